// Every client connection of the pooler, from accept to close, in a slot array where the slot is
// the pid of its cancel key: one index serves the janitor, the console's lists and CancelRequest
// lookups, at one array slot per client (a hash table entry costs several times that, and idle
// clients by the thousand add up). As with PostgreSQL's own pids, the random secret is what makes
// a cancel key unguessable; a pid is reused once its client has gone.
import crypto from "node:crypto";
import type { ClientConnection } from "./client.ts";

export class ClientRegistry implements Iterable<ClientConnection> {
  /** Slot i holds the client whose cancel pid is i + 1. */
  private readonly slots: (ClientConnection | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Registers a new client under a cancel key of its own: a free pid and a random secret. */
  add(client: ClientConnection): void {
    const slot = this.freeSlots.pop() ?? this.slots.length;
    this.slots[slot] = client;
    client.cancelPid = slot + 1;
    // `| 0`: an int32 that V8 keeps in the object, where randomInt's double would be boxed.
    client.cancelSecret = crypto.randomInt(0, 0x7fffffff) | 0;
    this.count++;
  }

  delete(client: ClientConnection): void {
    const slot = client.cancelPid - 1;
    if (this.slots[slot] !== client) return;
    this.slots[slot] = undefined;
    this.freeSlots.push(slot);
    this.count--;
  }

  /** The client a CancelRequest names, if its secret matches. */
  byCancelKey(pid: number, secret: number): ClientConnection | undefined {
    const client = pid >= 1 ? this.slots[pid - 1] : undefined;
    return client?.cancelSecret === secret ? client : undefined;
  }

  /**
   * Calls `visit` for each client in pid order; one that leaves meanwhile is skipped. Allocates
   * nothing, unlike a generator's walk: the janitor walks every client three times a second, and
   * V8 returns idle memory only to a process that allocates little.
   */
  forEach(visit: (client: ClientConnection) => void): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const client = slots[i];
      if (client !== undefined) visit(client);
    }
  }

  [Symbol.iterator](): IterableIterator<ClientConnection> {
    const present: ClientConnection[] = [];
    this.forEach((client) => present.push(client));
    return present.values();
  }
}
