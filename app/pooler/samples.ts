// From readings of the pooler to what the dashboard plots: one sample per reading, rates taken
// between successive readings, and the window of samples laid out as uPlot's columns.
import type { ConsoleReading, PoolReading } from "./console.ts";
import { poolKey, quantileBetween, type Buckets } from "./histogram.ts";

export interface Reading {
  /** when it was taken, ms since the epoch */
  at: number;
  console: ConsoleReading;
  /** the wait histograms by poolKey(), when the metrics endpoint is configured and answered */
  waits: Map<string, Buckets> | null;
}

/** A pool at one moment. Rates are over the interval since the previous reading; null: nothing to measure. */
export interface PoolPoint extends PoolReading {
  /** transactions per second (of the pool's database: SHOW STATS counts per database) */
  tps: number | null;
  /** mean wait of the clients handed a server in the interval (of the pool's database), in ms */
  avg_wait_ms: number | null;
  /** 99th percentile of those waits, from the pool's histogram, in ms */
  p99_wait_ms: number | null;
}

export interface Sample {
  at: number;
  pools: PoolPoint[];
}

/** The series the page plots per pool; PoolPoint's names, so the page and SHOW POOLS agree. */
export const SERIES = [
  "cl_active",
  "cl_waiting",
  "sv_active",
  "sv_idle",
  "pool_size",
  "max_connections",
  "tps",
  "avg_wait_ms",
  "p99_wait_ms",
] as const satisfies readonly (keyof PoolPoint)[];

export type SeriesName = (typeof SERIES)[number];

export interface PoolView {
  database: string;
  user: string;
  /** the pool in the newest sample */
  latest: PoolPoint;
  /** one value per entry of DashboardData.t; null where the pool did not exist yet */
  series: Record<SeriesName, (number | null)[]>;
}

export interface DashboardData {
  /** the console could not be read at the last attempt (the numbers shown are older) */
  error: string | null;
  /** the metrics endpoint could not be read, with no histograms kept or several times in a row: no p99 */
  warning: string | null;
  /** whether a metrics endpoint is configured, i.e. whether p99 can be shown at all */
  p99: boolean;
  /** the newest sample's time, ms since the epoch; null before the first one */
  sampledAt: number | null;
  /** the same in Django's DATETIME_FORMAT and UTC, as every other date in the admin */
  sampledAtText: string | null;
  intervalMs: number;
  windowMs: number;
  /** sample times in seconds since the epoch (uPlot's x values) */
  t: number[];
  pools: PoolView[];
}

/** A counter's rate per second; null when it went back (the pooler restarted) or no time passed. */
function rate(newer: number, older: number, seconds: number): number | null {
  return seconds > 0 && newer >= older ? (newer - older) / seconds : null;
}

export function sampleOf(current: Reading, previous: Reading | null): Sample {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0;
  const pools = current.console.pools.map((pool): PoolPoint => {
    const totals = current.console.totals.get(pool.database);
    const before = previous?.console.totals.get(pool.database);
    const key = poolKey(pool.database, pool.user);
    const waits = current.waits?.get(key);
    const waitsBefore = previous?.waits?.get(key);
    const p99 = waits && waitsBefore ? quantileBetween(waitsBefore, waits, 0.99) : null;
    return {
      ...pool,
      tps: totals && before ? rate(totals.xacts, before.xacts, seconds) : null,
      avg_wait_ms:
        totals && before && totals.assignments > before.assignments
          ? (totals.waitUs - before.waitUs) / (totals.assignments - before.assignments) / 1000
          : null,
      p99_wait_ms: p99 === null ? null : p99 * 1000,
    };
  });
  return { at: current.at, pools };
}

/** The samples as columns, for the pools of the newest sample (a pool closed since is dropped). */
export function columns(samples: readonly Sample[]): Pick<DashboardData, "t" | "pools"> {
  const newest = samples.at(-1);
  if (!newest) return { t: [], pools: [] };
  const pools = newest.pools.map((latest): PoolView => {
    const key = poolKey(latest.database, latest.user);
    const points = samples.map((s) => s.pools.find((p) => poolKey(p.database, p.user) === key));
    const series = Object.fromEntries(SERIES.map((name) => [name, points.map((p) => (p ? p[name] : null))]));
    return { database: latest.database, user: latest.user, latest, series: series as PoolView["series"] };
  });
  return { t: samples.map((s) => s.at / 1000), pools };
}
