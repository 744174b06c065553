// Peering (PgBouncer 1.19's peer_id and [peers]): poolers behind one TCP load balancer, where a
// client's CancelRequest, sent on a connection of its own, may reach a pooler other than the one its
// session is on. The key says whose it is (client-registry.ts); a key of another peer is forwarded
// there with its time-to-live decremented, so that a misconfigured group cannot bounce it forever.
import { CANCEL_TTL_MASK, peerOfCancelKey } from "./client-registry.ts";
import { sendCancelRequest, type CancelTarget, type HeldCancel } from "./cancel-request.ts";
import { now } from "./clock.ts";
import type { PeerDef, PoolerConfig } from "./config/types.ts";
import { keepaliveOf } from "./keepalive.ts";
import type { Logger } from "./log.ts";
import { dialTarget, socketErrorText } from "./unix-socket.ts";
import type { DnsCache } from "./dns-cache.ts";

/** What the forwarder needs of the running pooler (the config changes on RELOAD). */
export interface PeerHost {
  readonly config: PoolerConfig;
  readonly log: Logger;
  /** How long a forwarded cancel may take to be taken, its wait for its turn included. */
  readonly cancelTimeoutMs: number;
  readonly dns: DnsCache;
}

/** SHOW PEER_POOLS' row: the cancel requests on their way to one peer. */
export interface PeerPoolRow {
  peer_id: number;
  /** Forwarded, the peer has not closed the connection yet. */
  cl_active_cancel_req: number;
  /** Queued behind the peer's pool_size. */
  cl_waiting_cancel_req: number;
  sv_active_cancel: number;
  /** Connecting to the peer. */
  sv_login: number;
}

/** A request to forward; `done` closes the client's connection it came on. */
interface Forward extends HeldCancel {
  pid: number;
  secret: number;
  /** clock.ts time it arrived: a cancel that lands much later would hit a later query. */
  since: number;
  done: () => void;
}

/** The cancel requests of one peer: at most its pool_size at once, the rest in arrival order. */
class PeerCancels {
  connecting = 0;
  sent = 0;
  readonly waiting: Forward[] = [];

  get active(): number {
    return this.connecting + this.sent;
  }
}

export class PeerForwarder {
  private readonly byPeer = new Map<number, PeerCancels>();

  constructor(private readonly host: PeerHost) {}

  /** Whether a CancelRequest with this key belongs to another peer (and so is not looked up here). */
  isForeign(pid: number): boolean {
    const own = this.host.config.peerId;
    return own > 0 && peerOfCancelKey(pid) !== own;
  }

  /**
   * Sends a foreign key's CancelRequest on to its peer, or drops it with the reason in the log;
   * `done` once the peer has closed the connection (it has acted), or the request is dropped.
   */
  forward(pid: number, secret: number, done: () => void): HeldCancel | null {
    const peerId = peerOfCancelKey(pid);
    const drop = (why: string): null => {
      this.host.log.warn({ peer_id: peerId }, why);
      done();
      return null;
    };
    if ((secret & CANCEL_TTL_MASK) === 0) {
      return drop("failed to forward cancel request because its TTL was exhausted");
    }
    const peer = this.host.config.peers.get(peerId);
    if (peer === undefined) return drop("could not find peer to forward cancel request to");
    const cancels = this.cancelsOf(peer.id);
    // secret - 1 decrements the TTL bits alone: they are not 0
    const key: Forward = {
      pid,
      secret: secret - 1,
      since: now(),
      done,
      pool: null,
      connection: null,
      waiting: false,
    };
    if (cancels.active < this.poolSize(peer)) {
      this.send(peer, cancels, key);
      return key;
    }
    // Each waiting request is a few bytes, but anyone can send them: no more than clients allowed.
    if (cancels.waiting.length >= this.host.config.maxClientConn) {
      return drop("too many cancel requests waiting for their peer, dropped");
    }
    key.waiting = true;
    cancels.waiting.push(key);
    return key;
  }

  /**
   * A request still waiting for its turn whose client has left goes no further: PgBouncer drops a
   * waiting cancel request with its client.
   */
  withdraw(held: HeldCancel): void {
    if (!held.waiting) return;
    for (const cancels of this.byPeer.values()) {
      const at = cancels.waiting.indexOf(held as Forward);
      if (at >= 0) cancels.waiting.splice(at, 1);
    }
  }

  rows(): PeerPoolRow[] {
    return this.configuredPeers().map((peer) => {
      const c = this.byPeer.get(peer.id);
      return {
        peer_id: peer.id,
        cl_active_cancel_req: c?.active ?? 0,
        cl_waiting_cancel_req: c?.waiting.length ?? 0,
        sv_active_cancel: c?.sent ?? 0,
        sv_login: c?.connecting ?? 0,
      };
    });
  }

  /** [peers] but this pooler's own entry, which PgBouncer allows so that one section serves all. */
  configuredPeers(): PeerDef[] {
    const { peers, peerId } = this.host.config;
    return [...peers.values()].filter((p) => p.id !== peerId).sort((a, b) => a.id - b.id);
  }

  /** pool_size, else default_pool_size; 0 is no limit, as for pools. */
  poolSize(peer: PeerDef): number {
    return peer.poolSize ?? (this.host.config.defaultPoolSize || Infinity);
  }

  private cancelsOf(id: number): PeerCancels {
    let cancels = this.byPeer.get(id);
    if (cancels === undefined) this.byPeer.set(id, (cancels = new PeerCancels()));
    return cancels;
  }

  private send(peer: PeerDef, cancels: PeerCancels, key: Forward): void {
    const { config, log, cancelTimeoutMs, dns } = this.host;
    // Plain text, as PgBouncer sends a peer its CancelRequest as the connection's first bytes:
    // server_tls_* describe PostgreSQL, and a peer (client_tls_sslmode=disable by default, its
    // certificate made for the balancer's name) would refuse the SSLRequest or fail verify-full.
    const target: CancelTarget = {
      ...dialTarget(peer.host, config.unixSocketDir, null),
      port: peer.port,
      lookup: dns.lookup,
      keepalive: keepaliveOf(config),
    };
    key.waiting = false;
    cancels.connecting++;
    let sent = false;
    sendCancelRequest(target, key, cancelTimeoutMs - (now() - key.since), {
      sent: () => {
        sent = true;
        cancels.connecting--;
        cancels.sent++;
      },
      failed: (err) =>
        log.warn({ peer_id: peer.id, err: socketErrorText(err) }, "could not forward cancel request to peer"),
      done: () => {
        if (sent) cancels.sent--;
        else cancels.connecting--;
        key.done();
        this.sendNext(peer.id, cancels);
      },
    });
  }

  private sendNext(id: number, cancels: PeerCancels): void {
    const peer = this.host.config.peers.get(id);
    if (peer === undefined && cancels.waiting.length > 0) {
      this.host.log.warn(
        { peer_id: id, dropped: cancels.waiting.length },
        "peer removed by RELOAD: its waiting cancel requests are dropped",
      );
      for (const dropped of cancels.waiting.splice(0)) dropped.done();
    }
    const expired = this.dropExpired(cancels.waiting);
    if (expired > 0) {
      this.host.log.warn(
        { peer_id: id, dropped: expired },
        "cancel requests waited cancel_wait_timeout for their peer, dropped",
      );
    }
    const next = cancels.waiting.shift();
    if (peer !== undefined && next !== undefined) return this.send(peer, cancels, next);
    // a peer with nothing on its way keeps no state
    if (cancels.active === 0) this.byPeer.delete(id);
  }

  /** Drops the oldest waiting requests that have used up cancel_wait_timeout; how many. */
  private dropExpired(waiting: Forward[]): number {
    const limit = now() - this.host.cancelTimeoutMs;
    let n = 0;
    while (n < waiting.length && waiting[n]!.since <= limit) n++;
    // out of the queue first: each done() closes a client, which would withdraw it
    for (const dropped of waiting.splice(0, n)) dropped.done();
    return n;
  }
}
