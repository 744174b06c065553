// Every client connection of the pooler, from accept to close, keyed by the pid of its cancel key:
// one table serves the janitor, the console's lists and CancelRequest lookups, since at thousands
// of idle clients each table's entry per client counts. The pid is random like the secret (62
// random bits in all, where PostgreSQL's own keys have a guessable pid): a slot index for a pid
// saved about 30 bytes per client, within the noise of RSS, for half the key's entropy.
import crypto from "node:crypto";
import type { ClientConnection } from "./client.ts";

export class ClientRegistry implements Iterable<ClientConnection> {
  private readonly byPid = new Map<number, ClientConnection>();

  get size(): number {
    return this.byPid.size;
  }

  /** Registers a new client under a cancel key of its own: a pid no other client has, a random secret. */
  add(client: ClientConnection): void {
    // `| 0`: int32s that V8 keeps in the object, where randomInt's doubles would each be boxed.
    let pid: number;
    do pid = crypto.randomInt(1, 0x7fffffff) | 0;
    while (this.byPid.has(pid));
    client.cancelPid = pid;
    client.cancelSecret = crypto.randomInt(0, 0x7fffffff) | 0;
    this.byPid.set(pid, client);
  }

  delete(client: ClientConnection): void {
    if (this.byPid.get(client.cancelPid) === client) this.byPid.delete(client.cancelPid);
  }

  /** The client a CancelRequest names, if its secret matches. */
  byCancelKey(pid: number, secret: number): ClientConnection | undefined {
    const client = this.byPid.get(pid);
    return client?.cancelSecret === secret ? client : undefined;
  }

  /**
   * Calls `visit` for each client; one that leaves meanwhile is skipped. Allocates nothing: the
   * janitor walks every client three times a second, and V8 returns idle memory only to a process
   * that allocates little.
   */
  forEach(visit: (client: ClientConnection) => void): void {
    this.byPid.forEach(visit);
  }

  [Symbol.iterator](): IterableIterator<ClientConnection> {
    return this.byPid.values();
  }
}
