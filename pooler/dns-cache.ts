// PgBouncer's DNS cache (dns_max_ttl, dns_nxdomain_ttl). A server or peer host name is looked up once
// and its addresses served for dns_max_ttl, whatever the record's own TTL (getaddrinfo does not
// report it, as c-ares does not to PgBouncer); a failed lookup is remembered for dns_nxdomain_ttl, so
// that clients of a database whose host does not resolve are refused at once rather than each
// waiting on the resolver. Connects that need a name being looked up share that lookup, and each
// connect starts at the name's next address, PgBouncer's round robin over them. Handed to
// net.connect as its `lookup`, which it calls only for names, never for IP addresses or sockets.
import dns from "node:dns";
import type net from "node:net";
import { now } from "./clock.ts";

/** All the addresses of a name, in the resolver's order. */
export type Resolve = (hostname: string) => Promise<dns.LookupAddress[]>;

export interface DnsTtls {
  /** dns_max_ttl, ms */
  maxTtl: number;
  /** dns_nxdomain_ttl, ms */
  nxdomainTtl: number;
}

interface Entry {
  /** the last lookup that succeeded: kept through a failed one, so that a failover after it is seen */
  addresses: dns.LookupAddress[];
  /** the last lookup failed: answered with this until dns_nxdomain_ttl has passed */
  error: NodeJS.ErrnoException | null;
  /** now() after which the next connect looks the name up again */
  expires: number;
  /** where the next connect starts in `addresses` */
  next: number;
  inFlight: Promise<void> | null;
}

/** A row of SHOW DNS_HOSTS. */
export interface DnsHostRow {
  hostname: string;
  /** seconds left; 0 once expired (the name stays listed, as in PgBouncer) */
  ttl: number;
  addrs: string;
}

// ADDRCONFIG as net.connect's own lookup asks: no IPv6 addresses on a host that has none configured
const systemResolve: Resolve = (hostname) =>
  dns.promises.lookup(hostname, { all: true, hints: dns.ADDRCONFIG });

export class DnsCache {
  private readonly names = new Map<string, Entry>();
  /** connects waiting for a lookup (SHOW LISTS' dns_pending) */
  private waiting = 0;

  /** `gone`: a new lookup of `hostname` no longer gives `addresses` (PgBouncer's DNS failover). */
  constructor(
    private readonly ttls: () => DnsTtls,
    private readonly gone: (hostname: string, addresses: string[]) => void,
    private readonly resolve: Resolve = systemResolve,
  ) {}

  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    const answer = (entry: Entry): void => {
      if (entry.error !== null) return callback(entry.error, "");
      const family = options.family === 4 || options.family === 6 ? options.family : 0;
      const addresses = rotate(entry, family);
      if (addresses.length === 0) return callback(notFound(hostname, family), "");
      if (options.all === true) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    };
    const entry = this.names.get(hostname);
    if (entry !== undefined && entry.inFlight === null && now() < entry.expires) return answer(entry);
    this.waiting++;
    void this.refresh(hostname, entry).then((fresh) => {
      this.waiting--;
      answer(fresh);
    });
  };

  /** SHOW DNS_HOSTS */
  rows(): DnsHostRow[] {
    const t = now();
    return [...this.names].map(([hostname, e]) => ({
      hostname,
      ttl: Math.max(0, Math.floor((e.expires - t) / 1000)),
      addrs: e.error === null ? e.addresses.map(addressText).join(",") : "",
    }));
  }

  /** SHOW LISTS: names cached, lookups running, connects waiting for one */
  counts(): { names: number; queries: number; pending: number } {
    let queries = 0;
    for (const e of this.names.values()) if (e.inFlight !== null) queries++;
    return { names: this.names.size, queries, pending: this.waiting };
  }

  private async refresh(hostname: string, known: Entry | undefined): Promise<Entry> {
    const entry = known ?? { addresses: [], error: null, expires: 0, next: 0, inFlight: null };
    if (known === undefined) this.names.set(hostname, entry);
    entry.inFlight ??= this.resolve(hostname)
      .then(
        (addresses) => {
          const { maxTtl } = this.ttls();
          const vanished = entry.addresses
            .map((old) => old.address)
            .filter((old) => !addresses.some((a) => a.address === old));
          Object.assign(entry, { addresses, error: null, expires: now() + maxTtl, next: 0 });
          if (vanished.length > 0) this.gone(hostname, vanished);
        },
        (err: NodeJS.ErrnoException) => {
          const { nxdomainTtl } = this.ttls();
          Object.assign(entry, { error: err, expires: now() + nxdomainTtl });
        },
      )
      .then(() => {
        entry.inFlight = null;
      });
    await entry.inFlight;
    return entry;
  }
}

/** A lookup that answers `address` for any name: a connection back to where an earlier one went. */
export function pinnedLookup(address: string, family: 4 | 6): net.LookupFunction {
  return (_hostname, options, callback) =>
    options.all === true ? callback(null, [{ address, family }]) : callback(null, address, family);
}

/** The name's addresses of `family` (0: all) from the entry's next one on; moves it one further. */
function rotate(entry: Entry, family: number): dns.LookupAddress[] {
  const all = entry.addresses;
  const start = entry.next % Math.max(1, all.length);
  entry.next = start + 1;
  const rotated = [...all.slice(start), ...all.slice(0, start)];
  return family === 0 ? rotated : rotated.filter((a) => a.family === family);
}

function notFound(hostname: string, family: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (no IPv${family} address)`), {
    code: "ENOTFOUND",
    hostname,
  });
}

/** As PgBouncer's sa2str prints a looked-up address: its port is 0. */
function addressText(a: dns.LookupAddress): string {
  return a.family === 6 ? `[${a.address}]:0` : `${a.address}:0`;
}
