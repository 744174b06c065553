// The pooler's client-wait histogram from its Prometheus endpoint (pooler/metrics.ts), and the
// quantile of the waits that finished between two scrapes. SHOW STATS only has a total wait time,
// which gives the average but no percentile; the histogram's cumulative buckets give both.

/** The histogram our pooler exports per pool (labels database, user); PgBouncer has none. */
const WAIT_BUCKET = "pgbouncer_pools_client_wait_seconds_bucket";

/** Cumulative counts by upper bound in seconds, ascending, ending with +Infinity. */
export type Buckets = { le: number; count: number }[];

export function poolKey(database: string, user: string): string {
  return `${database}/${user}`;
}

const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;

/** A label value as the text format escapes it: \\, \" and \n. */
const unescapeLabel = (value: string): string =>
  value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));

/** The wait buckets of every pool in a text-format scrape, keyed by poolKey(). */
export function parseWaitBuckets(text: string): Map<string, Buckets> {
  const pools = new Map<string, Buckets>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${WAIT_BUCKET}{`)) continue;
    const labels = Object.fromEntries([...line.matchAll(LABEL)].map((m) => [m[1]!, unescapeLabel(m[2]!)]));
    const { database, user, le } = labels;
    if (database === undefined || user === undefined || le === undefined) continue;
    const key = poolKey(database, user);
    const buckets = pools.get(key) ?? [];
    const bound = le === "+Inf" ? Infinity : Number(le);
    buckets.push({ le: bound, count: Number(line.slice(line.lastIndexOf(" ") + 1)) });
    pools.set(key, buckets);
  }
  for (const buckets of pools.values()) buckets.sort((a, b) => a.le - b.le);
  return pools;
}

export async function fetchWaitBuckets(url: string, timeoutMs: number): Promise<Map<string, Buckets>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return parseWaitBuckets(await res.text());
}

/**
 * The q-quantile, in seconds, of the observations made between `older` and `newer`, interpolated
 * within its bucket as Prometheus's histogram_quantile() does (and, like it, the highest finite
 * bound when it falls in +Inf). Null when nothing was observed, or the counters went back (the
 * pooler restarted).
 */
export function quantileBetween(older: Buckets, newer: Buckets, q: number): number | null {
  if (older.length !== newer.length) return null;
  const deltas = newer.map((b, i) => ({ le: b.le, count: b.count - older[i]!.count }));
  const total = deltas.at(-1)?.count ?? 0;
  if (total <= 0 || deltas.some((b) => b.count < 0)) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const { le, count } of deltas) {
    if (count >= rank) {
      if (le === Infinity) return lowerLe;
      return lowerLe + ((le - lowerLe) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerLe = le;
    lowerCount = count;
  }
  return null;
}
