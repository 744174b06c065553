// A [databases] entry's `host=` list (PgBouncer: "host=db1,db2,db3"): which host the next server
// connection of a pool dials. `load_balance_hosts` says how: round-robin (the default) takes the
// next host for every new connection; disable keeps to one host until a connection to it fails.
// As in PgBouncer, a host that is down is not skipped in round-robin: its logins fail, and
// server_login_retry applies as for any failed login.

import { InvalidValue } from "./config/errors.ts";

export type LoadBalanceHosts = "round-robin" | "disable";

export const LOAD_BALANCE_HOSTS: readonly LoadBalanceHosts[] = ["round-robin", "disable"];

/** The hosts of a `host=` value; a single host is a list of one. Throws InvalidValue on an empty entry. */
export function parseHostList(host: string): string[] {
  if (!host.includes(",")) return [host];
  const hosts = host.split(",").map((h) => h.trim());
  if (hosts.some((h) => h === "")) throw new InvalidValue("a host or a comma-separated list of hosts");
  return hosts;
}

export class HostList {
  private readonly hosts: readonly string[];
  private current = 0;

  constructor(
    host: string,
    private readonly mode: LoadBalanceHosts = "round-robin",
  ) {
    this.hosts = parseHostList(host);
  }

  get names(): readonly string[] {
    return this.hosts;
  }

  /** The host the next connection dials. */
  pick(): string {
    const host = this.hosts[this.current]!;
    if (this.mode === "round-robin") this.current = (this.current + 1) % this.hosts.length;
    return host;
  }

  /** A connection to `host` failed: with load_balance_hosts=disable, the next one is tried. */
  failed(host: string): void {
    if (this.mode === "disable" && this.hosts[this.current] === host) {
      this.current = (this.current + 1) % this.hosts.length;
    }
  }
}
