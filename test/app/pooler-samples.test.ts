// The dashboard's arithmetic, on made-up readings: rates between readings, the p99 from histogram
// buckets, and the columns the page plots.
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { parseWaitBuckets, quantileBetween, type Buckets } from "../../app/pooler/histogram.ts";
import { columns, sampleOf, type Reading } from "../../app/pooler/samples.ts";
import type { PoolReading } from "../../app/pooler/console.ts";

const pool = (database: string, counts: Partial<PoolReading> = {}): PoolReading => ({
  database,
  user: "postgres",
  cl_active: 0,
  cl_waiting: 0,
  sv_active: 0,
  sv_idle: 0,
  maxwait_ms: 0,
  pool_size: 20,
  max_connections: 0,
  ...counts,
});

function reading(
  at: number,
  totals: { xacts: number; assignments: number; waitUs: number },
  waits: Buckets | null = null,
  pools = [pool("app")],
): Reading {
  return {
    at,
    console: { pools, totals: new Map([["app", totals]]) },
    waits: waits && new Map([["app/postgres", waits]]),
  };
}

const buckets = (counts: number[]): Buckets =>
  [0.001, 0.01, 0.1, 1, Infinity].map((le, i) => ({ le, count: counts[i]! }));

describe("quantileBetween", () => {
  it("interpolates within the bucket holding the rank, counting only the new observations", () => {
    // 100 new waits: 90 under 1 ms, 9 in (1 ms, 10 ms], 1 in (10 ms, 100 ms]; rank 99 is the 9th of (1, 10].
    const older = buckets([5, 5, 5, 5, 5]);
    const newer = buckets([95, 104, 105, 105, 105]);
    expect(quantileBetween(older, newer, 0.99)).toBeCloseTo(0.01, 10);
    expect(quantileBetween(older, newer, 0.5)).toBeCloseTo(0.001 * (50 / 90), 10);
  });

  it("answers the highest finite bound for a rank beyond it, as Prometheus does", () => {
    expect(quantileBetween(buckets([0, 0, 0, 0, 0]), buckets([0, 0, 0, 0, 3]), 0.99)).toBe(1);
  });

  it("has no answer without new observations or after a restart of the pooler", () => {
    expect(quantileBetween(buckets([1, 2, 3, 4, 5]), buckets([1, 2, 3, 4, 5]), 0.99)).toBeNull();
    expect(quantileBetween(buckets([1, 2, 3, 4, 5]), buckets([0, 0, 0, 1, 1]), 0.99)).toBeNull();
  });
});

describe("parseWaitBuckets", () => {
  it("reads the wait buckets of each pool from the text format, and nothing else", () => {
    const text = [
      "# TYPE pgbouncer_pools_client_wait_seconds histogram",
      'pgbouncer_pools_client_wait_seconds_bucket{le="0.001",database="app",user="postgres"} 7',
      'pgbouncer_pools_client_wait_seconds_bucket{le="+Inf",database="app",user="postgres"} 9',
      'pgbouncer_pools_client_wait_seconds_bucket{le="0.001",database="other",user="bob"} 1',
      'pgbouncer_pools_client_wait_seconds_bucket{le="+Inf",database="other",user="bob"} 1',
      'pgbouncer_pools_client_wait_seconds_sum{database="app",user="postgres"} 0.5',
      'pgbouncer_pools_transaction_duration_seconds_bucket{le="0.001",database="app",user="postgres"} 3',
    ].join("\n");
    expect(parseWaitBuckets(text)).toEqual(
      new Map([
        [
          "app/postgres",
          [
            { le: 0.001, count: 7 },
            { le: Infinity, count: 9 },
          ],
        ],
        [
          "other/bob",
          [
            { le: 0.001, count: 1 },
            { le: Infinity, count: 1 },
          ],
        ],
      ]),
    );
  });

  it("reads label values as the text format escapes them (a Windows domain user, a quote)", async () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: "pgbouncer_pools_client_wait_seconds",
      help: "waits",
      buckets: [0.001],
      labelNames: ["database", "user"],
      registers: [registry],
    });
    histogram.observe({ database: 'say "hi"', user: "CORP\\alice" }, 0.0005);
    expect([...parseWaitBuckets(await registry.metrics()).keys()]).toEqual(['say "hi"/CORP\\alice']);
  });
});

describe("sampleOf", () => {
  it("takes transactions per second and the mean wait from the totals' growth since the last reading", () => {
    const first = reading(10_000, { xacts: 100, assignments: 50, waitUs: 1_000 });
    const second = reading(12_000, { xacts: 700, assignments: 250, waitUs: 801_000 });
    const [point] = sampleOf(second, first).pools;
    expect(point).toMatchObject({ tps: 300, avg_wait_ms: 4, p99_wait_ms: null });
  });

  it("has no rates for the first reading, nor when nobody got a server, nor after a pooler restart", () => {
    const first = reading(10_000, { xacts: 100, assignments: 50, waitUs: 1_000 });
    expect(sampleOf(first, null).pools[0]).toMatchObject({ tps: null, avg_wait_ms: null });
    const quiet = reading(11_000, { xacts: 100, assignments: 50, waitUs: 1_000 });
    expect(sampleOf(quiet, first).pools[0]).toMatchObject({ tps: 0, avg_wait_ms: null });
    const restarted = reading(11_000, { xacts: 3, assignments: 3, waitUs: 0 });
    expect(sampleOf(restarted, first).pools[0]).toMatchObject({ tps: null, avg_wait_ms: null });
  });

  it("takes the p99 wait from the pool's histogram, in ms", () => {
    const totals = { xacts: 0, assignments: 0, waitUs: 0 };
    const first = reading(10_000, totals, buckets([0, 0, 0, 0, 0]));
    const second = reading(11_000, totals, buckets([0, 0, 100, 100, 100]));
    expect(sampleOf(second, first).pools[0]!.p99_wait_ms).toBeCloseTo((0.01 + 0.09 * 0.99) * 1000, 9);
  });
});

describe("columns", () => {
  it("lays the samples out per pool of the newest one, with null before a pool existed", () => {
    const totals = { xacts: 0, assignments: 0, waitUs: 0 };
    const samples = [
      sampleOf(reading(1_000, totals, null, [pool("app", { cl_active: 1 }), pool("gone")]), null),
      sampleOf(
        reading(2_000, totals, null, [pool("app", { cl_active: 2 }), pool("new", { cl_waiting: 4 })]),
        null,
      ),
    ];
    const { t, pools } = columns(samples);
    expect(t).toEqual([1, 2]);
    expect(pools.map((p) => p.database)).toEqual(["app", "new"]);
    expect(pools[0]!.series.cl_active).toEqual([1, 2]);
    expect(pools[1]!.series.cl_waiting).toEqual([null, 4]);
    expect(pools[1]!.latest.cl_waiting).toBe(4);
  });
});
