// Every client connection of the pooler, from accept to close, keyed by its cancel key: one table
// serves the janitor, the console's lists and CancelRequest lookups, since at thousands of idle
// clients each table's entry per client counts. The pid is random like the secret (62 random bits
// in all, where PostgreSQL's own keys have a guessable pid): a slot index for a pid saved about 30
// bytes per client, within the noise of RSS, for half the key's entropy.
//
// With peering (peer_id > 0), keys follow PgBouncer 1.19's layout, so that any pooler of the group,
// ours or PgBouncer, can tell whose key it is: bytes 1 and 2 of the pid hold the peer_id (low byte
// first), the pid's sign bit is clear, and the secret's two low bits are a time-to-live that each
// forwarding peer decrements, set to 3 here.
import crypto from "node:crypto";
import type { ClientConnection } from "./client.ts";

/** The secret's bits that count a forwarded cancel request's remaining hops. */
export const CANCEL_TTL_MASK = 3;

/** The peer_id a cancel key carries (meaningful only in a group of peers). */
export function peerOfCancelKey(pid: number): number {
  return ((pid >>> 16) & 0xff) | (((pid >>> 8) & 0xff) << 8);
}

export class ClientRegistry implements Iterable<ClientConnection> {
  private readonly bySlot = new Map<number, ClientConnection>();

  /** `peerId` is read once: the keys already given out carry it. */
  constructor(private readonly peerId = 0) {}

  get size(): number {
    return this.bySlot.size;
  }

  /** Registers a new client under a cancel key of its own. */
  add(client: ClientConnection): void {
    // `| 0`: int32s that V8 keeps in the object, where randomInt's doubles would each be boxed.
    let pid: number;
    let secret: number;
    do {
      pid = crypto.randomInt(1, 0x7fffffff) | 0;
      secret = crypto.randomInt(0, 0x7fffffff) | 0;
      if (this.peerId > 0) {
        pid = (pid & 0x7f0000ff) | ((this.peerId & 0xff) << 16) | ((this.peerId >>> 8) << 8);
        secret |= CANCEL_TTL_MASK;
      }
    } while (this.bySlot.has(this.slotOf(pid, secret)));
    client.cancelPid = pid;
    client.cancelSecret = secret;
    this.bySlot.set(this.slotOf(pid, secret), client);
  }

  delete(client: ClientConnection): void {
    const slot = this.slotOf(client.cancelPid, client.cancelSecret);
    if (this.bySlot.get(slot) === client) this.bySlot.delete(slot);
  }

  /** The client a CancelRequest names, if its whole key matches. */
  byCancelKey(pid: number, secret: number): ClientConnection | undefined {
    // peers that forwarded the request counted its TTL down: the rest of the key must match
    if (this.peerId > 0) secret |= CANCEL_TTL_MASK;
    const client = this.bySlot.get(this.slotOf(pid, secret));
    return client?.cancelPid === pid && client.cancelSecret === secret ? client : undefined;
  }

  /**
   * The table's key: the pid, or with peering (where every pid here has the same two peer bytes)
   * the pid's random bits with two bytes of the secret in the peer bytes' place, so that 10,000s of
   * clients still find free slots at once.
   */
  private slotOf(pid: number, secret: number): number {
    return this.peerId === 0 ? pid : (pid & 0x7f0000ff) | (secret & 0x00ffff00);
  }

  /**
   * Calls `visit` for each client; one that leaves meanwhile is skipped. Allocates nothing: the
   * janitor walks every client three times a second, and V8 returns idle memory only to a process
   * that allocates little.
   */
  forEach(visit: (client: ClientConnection) => void): void {
    this.bySlot.forEach(visit);
  }

  [Symbol.iterator](): IterableIterator<ClientConnection> {
    return this.bySlot.values();
  }
}
