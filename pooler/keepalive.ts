// TCP keepalive on client and server sockets, as PgBouncer's tune_socket sets it: SO_KEEPALIVE with
// tcp_keepalive, then each of tcp_keepidle, tcp_keepintvl and tcp_keepcnt that is set (0: the system's).
import { readFileSync } from "node:fs";
import type net from "node:net";
import type { PoolerConfig } from "./config/types.ts";

/** Whole seconds and a probe count, as the kernel takes them; all three 0: SO_KEEPALIVE alone. */
export interface Keepalive {
  readonly enable: boolean;
  readonly idle: number;
  readonly interval: number;
  readonly count: number;
}

type KeepaliveSettings = Pick<PoolerConfig, "tcpKeepalive" | "tcpKeepidle" | "tcpKeepintvl" | "tcpKeepcnt">;

/** Linux's own defaults, which PgBouncer's documentation quotes, where its sysctls cannot be read. */
const LINUX_DEFAULTS = { idle: 7200, interval: 75, count: 9 };

let system: typeof LINUX_DEFAULTS | undefined;

/** Read once: a pooler runs in one network namespace, whose sysctls are the ones that apply. */
function systemKeepalive(): typeof LINUX_DEFAULTS {
  const read = (name: string, fallback: number): number => {
    try {
      const n = Number(readFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`, "utf8").trim());
      return Number.isInteger(n) && n > 0 ? n : fallback;
    } catch {
      return fallback;
    }
  };
  system ??= {
    idle: read("time", LINUX_DEFAULTS.idle),
    interval: read("intvl", LINUX_DEFAULTS.interval),
    count: read("probes", LINUX_DEFAULTS.count),
  };
  return system;
}

/**
 * libuv sets idle, interval and count together and puts its own 1 s and 10 probes where it is given
 * none, which would declare a peer dead after 10 s of silence; so a setting left at 0 beside one that
 * is set takes the system's value, as it would in PgBouncer.
 */
export function keepaliveOf(c: KeepaliveSettings): Keepalive {
  // the kernel counts whole seconds, and 0 would mean "not set"
  const idle = Math.ceil(c.tcpKeepidle / 1000);
  const interval = Math.ceil(c.tcpKeepintvl / 1000);
  const count = c.tcpKeepcnt;
  if (!c.tcpKeepalive || (idle === 0 && interval === 0 && count === 0)) {
    return { enable: c.tcpKeepalive, idle: 0, interval: 0, count: 0 };
  }
  const os = systemKeepalive();
  return {
    enable: true,
    idle: idle || os.idle,
    interval: interval || os.interval,
    count: count || os.count,
  };
}

export function applyKeepalive(socket: net.Socket, k: Keepalive): void {
  if (k.idle === 0) socket.setKeepAlive(k.enable);
  else socket.setKeepAlive(true, k.idle * 1000, k.interval * 1000, k.count);
}
