// The Prometheus endpoint: a real scrape parsed with a Prometheus text parser, pgbouncer_exporter's
// metric names and labels, values that agree with the console, and the two histograms.
import { once } from "node:events";
import net from "node:net";
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LINES_PER_CHUNK } from "../../pooler/metric-chunks.ts";
import { connect, makePools } from "../support/clients.ts";
import { forcedEntry, iniOf, unforcedEntry } from "../support/databases-ini.ts";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { createLoginRole, UserlistDir } from "../support/roles.ts";
import { waitFor, watchTurns } from "../support/wait.ts";

/** pgbouncer_exporter's metrics (collector.go), with their type and labels. */
const EXPORTER_METRICS: Record<string, { type: MetricFamily["type"]; labels: string[] }> = {
  pgbouncer_up: { type: "GAUGE", labels: [] },
  pgbouncer_version_info: { type: "GAUGE", labels: ["version"] },
  pgbouncer_databases: { type: "GAUGE", labels: [] },
  pgbouncer_users: { type: "GAUGE", labels: [] },
  pgbouncer_pools: { type: "GAUGE", labels: [] },
  pgbouncer_free_clients: { type: "GAUGE", labels: [] },
  pgbouncer_used_clients: { type: "GAUGE", labels: [] },
  pgbouncer_login_clients: { type: "GAUGE", labels: [] },
  pgbouncer_free_servers: { type: "GAUGE", labels: [] },
  pgbouncer_used_servers: { type: "GAUGE", labels: [] },
  pgbouncer_cached_dns_names: { type: "GAUGE", labels: [] },
  pgbouncer_cached_dns_zones: { type: "GAUGE", labels: [] },
  pgbouncer_in_flight_dns_queries: { type: "GAUGE", labels: [] },
  pgbouncer_config_max_client_connections: { type: "GAUGE", labels: [] },
  pgbouncer_config_max_user_connections: { type: "GAUGE", labels: [] },
  ...Object.fromEntries(
    ["pool_size", "reserve_pool", "max_connections", "current_connections", "paused", "disabled"].map((m) => [
      `pgbouncer_databases_${m}`,
      { type: "GAUGE", labels: ["name", "host", "port", "database", "force_user", "pool_mode"] },
    ]),
  ),
  ...Object.fromEntries(
    [
      "queries_pooled_total",
      "queries_duration_seconds_total",
      "received_bytes_total",
      "sent_bytes_total",
      "client_wait_seconds_total",
      "sql_transactions_pooled_total",
      "server_in_transaction_seconds_total",
      "client_parses_total",
      "server_parses_total",
      "binds_total",
    ].map((m) => [`pgbouncer_stats_totals_${m}`, { type: "COUNTER", labels: ["database"] }]),
  ),
  ...Object.fromEntries(
    [
      "client_active_connections",
      "client_active_cancel_connections",
      "client_waiting_connections",
      "client_waiting_cancel_connections",
      "server_active_connections",
      "server_active_cancel_connections",
      "server_being_canceled_connections",
      "server_idle_connections",
      "server_used_connections",
      "server_testing_connections",
      "server_login_connections",
      "client_maxwait_seconds",
    ].map((m) => [`pgbouncer_pools_${m}`, { type: "GAUGE", labels: ["database", "user"] }]),
  ),
};

/** One sample line of the text format: name, optional {labels}, a float. */
const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

async function scrape(url: string): Promise<{ text: string; families: Map<string, MetricFamily> }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(text));
  return { text, families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

/**
 * The samples named `name`, read from the text directly: the parser merges the series of a
 * histogram that has labels into one, so histograms are checked line by line.
 */
function rawSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => {
      const labels = Object.fromEntries(
        [...line.matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
      );
      return { labels, value: Number(line.slice(line.lastIndexOf(" ") + 1)) };
    });
}

function histogram(
  text: string,
  name: string,
  labels: Record<string, string>,
): { count: number; sum: number; buckets: Map<string, number> } {
  const mine = (s: { labels: Record<string, string> }): boolean =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const one = (suffix: string): number => rawSamples(text, `${name}_${suffix}`).find(mine)!.value;
  const buckets = new Map(
    rawSamples(text, `${name}_bucket`)
      .filter(mine)
      .map((s) => [s.labels.le!, s.value]),
  );
  return { count: one("count"), sum: one("sum"), buckets };
}

function sample(families: Map<string, MetricFamily>, name: string, labels: Record<string, string>): number {
  const family = families.get(name);
  const found = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!found) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return Number(found.value ?? found.count);
}

describe("/metrics", () => {
  let tp: TestPooler;
  let metricsUrl: string;
  let admin: pg.Client;

  beforeAll(async () => {
    const port = await freePort();
    tp = await startTestPooler({ METRICS_PORT: String(port), DEFAULT_POOL_SIZE: "2" });
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    admin = await connect(tp.url("pgbouncer"));
    // the app pool's first server, which one client waits for as it logs in
    await (await connect(tp.url())).end();
  });

  afterAll(async () => {
    await admin.end();
    await tp.stop();
  });

  it("exports pgbouncer_exporter's metrics, with its names, types and labels, in valid text format", async () => {
    const app = await connect(tp.url());
    await app.query("SELECT 1");
    const { text, families } = await scrape(metricsUrl);
    for (const line of text.split("\n")) {
      if (line !== "" && !line.startsWith("#")) expect(line).toMatch(SAMPLE_LINE);
    }
    for (const [name, { type, labels }] of Object.entries(EXPORTER_METRICS)) {
      const family = families.get(name);
      expect(family, name).toBeDefined();
      expect(family!.type, name).toBe(type);
      expect(family!.help, name).not.toBe("");
      for (const m of family!.metrics)
        expect(Object.keys(m.labels ?? {}).sort(), name).toEqual([...labels].sort());
    }
    expect(sample(families, "pgbouncer_up", {})).toBe(1);
    expect(sample(families, "pgbouncer_version_info", { version: "PgBouncer 1.25.2" })).toBe(1);
    expect(
      sample(families, "pgbouncer_databases_pool_size", { name: "app", database: "app", force_user: "" }),
    ).toBe(2);
    expect(families.get("process_cpu_user_seconds_total")?.type).toBe("COUNTER");
    await app.end();
  });

  it("agrees with SHOW POOLS and SHOW STATS_TOTALS", async () => {
    const holders = await Promise.all([1, 2].map(() => connect(tp.url())));
    for (const h of holders) await h.query("BEGIN");
    const waiter = await connect(tp.url());
    const waiting = waiter.query("SELECT 1");
    await new Promise((r) => setTimeout(r, 100));

    const pools = (await admin.query("SHOW POOLS")).rows.find((r) => r.database === "app");
    const { families } = await scrape(metricsUrl);
    const labels = { database: "app", user: "postgres" };
    expect(sample(families, "pgbouncer_pools_client_active_connections", labels)).toBe(pools.cl_active);
    expect(sample(families, "pgbouncer_pools_client_waiting_connections", labels)).toBe(1);
    expect(sample(families, "pgbouncer_pools_server_active_connections", labels)).toBe(2);
    expect(sample(families, "pgbouncer_pools_client_maxwait_seconds", labels)).toBeGreaterThan(0.05);

    for (const h of holders) await h.query("COMMIT");
    await waiting;
    await Promise.all([...holders, waiter].map((c) => c.end()));

    const totals = (await admin.query("SHOW STATS_TOTALS")).rows.find((r) => r.database === "app");
    const { text, families: after } = await scrape(metricsUrl);
    const db = { database: "app" };
    expect(sample(after, "pgbouncer_stats_totals_sql_transactions_pooled_total", db)).toBe(
      Number(totals.xact_count),
    );
    expect(sample(after, "pgbouncer_stats_totals_queries_pooled_total", db)).toBe(Number(totals.query_count));
    expect(sample(after, "pgbouncer_stats_totals_received_bytes_total", db)).toBe(
      Number(totals.bytes_received),
    );
    expect(sample(after, "pgbouncer_stats_totals_sent_bytes_total", db)).toBe(Number(totals.bytes_sent));
    expect(sample(after, "pgbouncer_stats_totals_client_wait_seconds_total", db)).toBeCloseTo(
      Number(totals.wait_time) / 1e6,
      6,
    );
    expect(sample(after, "pgbouncer_stats_totals_server_in_transaction_seconds_total", db)).toBeCloseTo(
      Number(totals.xact_time) / 1e6,
      6,
    );

    // The histograms see every transaction and every wait for a server.
    expect(after.get("pgbouncer_pools_transaction_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(after.get("pgbouncer_pools_client_wait_seconds")?.type).toBe("HISTOGRAM");
    const xacts = histogram(text, "pgbouncer_pools_transaction_duration_seconds", labels);
    expect(xacts.count).toBe(Number(totals.xact_count));
    expect(xacts.buckets.get("+Inf")).toBe(xacts.count);
    expect(xacts.sum).toBeCloseTo(Number(totals.xact_time) / 1e6, 3);
    const waits = histogram(text, "pgbouncer_pools_client_wait_seconds", labels);
    // every wait: for each server assigned, and the first client's at login for the pool's first server
    expect(waits.count).toBe(Number(totals.server_assignment_count) + 1);
    expect(waits.sum).toBeCloseTo(Number(totals.wait_time) / 1e6, 3);
    // the waiter waited about 100 ms: above the 50 ms bucket
    expect(waits.buckets.get("0.05")).toBeLessThan(waits.count);
  });

  // With thousands of pools a scrape is seconds of CPU (5,000 pools: 2 s), which made in one go held
  // up every client that long; the pooler runs in this process, so its event loop is this one
  it("lets the event loop turn between metric families while it renders a scrape", async () => {
    const { result, turns } = await watchTurns(() => scrape(metricsUrl));
    expect(turns).toBeGreaterThanOrEqual(result.families.size);
  });

  it("gives scrapes that come together one body, read from one snapshot", async () => {
    const [a, b] = await Promise.all([scrape(metricsUrl), scrape(metricsUrl)]);
    // the process' CPU seconds differ between any two renderings
    expect(a.text).toContain("process_cpu_user_seconds_total");
    expect(b.text).toBe(a.text);
  });

  it("serves nothing but /metrics", async () => {
    const res = await fetch(metricsUrl.replace("/metrics", "/"));
    expect(res.status).toBe(404);
    await res.text();
    // the path is right, the method is not: 405, not a 404 that says the metrics are where they are
    const post = await fetch(metricsUrl, { method: "POST" });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    await post.text();
    // HEAD: GET's head, without the body
    const head = await fetch(metricsUrl, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(1000);
    expect(await head.text()).toBe("");
  });
});

// A database per tenant: a family has a line per pool (a histogram 18-19), which prom-client renders
// in one go (a histogram at 5,000 pools: 0.2-0.6 s, with every client waiting). Timing slices is no
// test on a shared machine; counting them is: a scrape of so many lines takes as many turns of the
// event loop as it has chunks of lines.
describe("/metrics with thousands of pools", () => {
  it("renders its families a chunk of lines at a time", async () => {
    // A DATABASE_URL without a database name is the "*" entry: a pool for every name a client sends.
    const server = new URL(inject("pgAppUrl"));
    server.pathname = "";
    const port = await freePort();
    const tp = await startTestPooler({ METRICS_PORT: String(port), DATABASE_URL: server.toString() });
    try {
      const pools = 2000;
      await makePools(tp.port, 0, pools, "postgres");
      // until the answer's head, which comes once the body is made: reading it is the test's work
      const url = `http://127.0.0.1:${port}/metrics`;
      const { result: res, turns } = await watchTurns(() => fetch(url));
      const text = await res.text();
      for (const name of [
        "pgbouncer_pools_transaction_duration_seconds_count",
        "pgbouncer_pools_server_idle_connections",
      ]) {
        const tenants = rawSamples(text, name).filter((s) => s.labels.database!.startsWith("tenant_"));
        expect(tenants, name).toHaveLength(pools);
      }
      const lines = text.split("\n").length;
      expect(turns).toBeGreaterThanOrEqual(lines / LINES_PER_CHUNK);
    } finally {
      await tp.stop();
    }
  }, 60_000);
});

/** Series (a name and its labels) a scrape gives more than once: a valid exposition has none. */
function repeatedSeries(text: string): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const series = line.slice(0, line.lastIndexOf(" "));
    if (seen.has(series)) repeated.push(series);
    seen.add(series);
  }
  return repeated;
}

// A RELOAD forcing a user whose own pool of the entry is there already renames the entry's forced pool
// to that user, as PgBouncer 1.18 renames its forced user: two pools of one database and user, which
// SHOW POOLS lists as two rows (as PgBouncer's) but the exporter's labels cannot tell apart.
describe("/metrics of two pools of one database and user", () => {
  const XACTS = "pgbouncer_pools_transaction_duration_seconds";
  const userlists = new UserlistDir();

  beforeAll(() => createLoginRole(inject("pgAppUrl"), "metrics_alice", "alice-pw", "md5"));
  afterAll(() => userlists.remove());

  it("gives them one series, both pools' sum, which stays while either pool lives", async () => {
    const { ini, setDatabases } = iniOf(unforcedEntry());
    const port = await freePort();
    const env = {
      DATABASE_URL: "",
      AUTH_FILE: userlists.write([["postgres", "postgres"]]),
      ADMIN_USERS: "postgres",
      METRICS_PORT: String(port),
      POOL_IDLE_TIMEOUT: "1",
    };
    const tp = await startTestPooler(env, ini);
    const metricsUrl = `http://127.0.0.1:${port}/metrics`;
    const labels = { database: "forced", user: "postgres" };
    const admin = await connect(tp.url("pgbouncer"));
    const forcedPools = async (): Promise<{ cl_active: number }[]> =>
      (await admin.query("SHOW POOLS")).rows.filter((r) => r.database === "forced");
    // postgres' own pool, while the entry forces no one
    const own = await connect(tp.url("forced"));
    const others: pg.Client[] = [];
    try {
      await own.query("SELECT 1");
      setDatabases(forcedEntry("metrics_alice", "alice-pw"));
      await admin.query("RELOAD");
      others.push(await connect(tp.url("forced")));
      await others[0]!.query("SELECT 1");
      const asAlice = { database: "forced", user: "metrics_alice" };
      const aliceXacts = histogram((await scrape(metricsUrl)).text, XACTS, asAlice).count;
      setDatabases(forcedEntry("postgres", "postgres"));
      await admin.query("RELOAD");
      others.push(await connect(tp.url("forced")));
      await others[1]!.query("SELECT 1");

      const totals = (await admin.query("SHOW STATS_TOTALS")).rows.find((r) => r.database === "forced");
      expect((await forcedPools()).map((r) => r.cl_active).sort()).toEqual([1, 2]);
      const both = await scrape(metricsUrl);
      expect(repeatedSeries(both.text)).toEqual([]);
      expect(sample(both.families, "pgbouncer_pools_client_active_connections", labels)).toBe(3);
      // the renamed pool's transactions as metrics_alice stay in that name's series, gone with it
      expect(
        rawSamples(both.text, `${XACTS}_count`).filter((s) => s.labels.user === "metrics_alice"),
      ).toEqual([]);
      const xacts = histogram(both.text, XACTS, labels).count;
      expect(xacts).toBe(Number(totals.xact_count) - aliceXacts);

      // postgres' own pool, its client gone and its server closed, is freed after pool_idle_timeout
      await own.end();
      await admin.query("RECONNECT forced");
      await waitFor(async () => (await forcedPools()).length === 1, "postgres' own pool to be freed");
      const one = await scrape(metricsUrl);
      expect(sample(one.families, "pgbouncer_pools_client_active_connections", labels)).toBe(2);
      expect(histogram(one.text, XACTS, labels).count).toBe(xacts);
      await others[1]!.query("SELECT 1");
      expect(histogram((await scrape(metricsUrl)).text, XACTS, labels).count).toBe(xacts + 1);
    } finally {
      await Promise.all([own, admin, ...others].map((c) => c.end().catch(() => undefined)));
      await tp.stop();
    }
  });
});

describe("/metrics lifecycle", () => {
  it("is off by default", async () => {
    const tp = await startTestPooler();
    try {
      const listening = tp.logs.find((l) => l.msg === "listening")!;
      expect(listening.metrics_port).toBeUndefined();
    } finally {
      await tp.stop();
    }
  });

  it("closes with the pooler", async () => {
    const port = await freePort();
    const tp = await startTestPooler({ METRICS_PORT: String(port) });
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    await tp.stop();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});

/** One raw HTTP/1.1 request, for targets fetch would not send; resolves with the status line. */
function rawRequest(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let reply = "";
    socket.on("data", (d: Buffer) => (reply += d.toString()));
    socket.on("close", () => resolve(reply.split("\r\n")[0]!));
    socket.on("error", reject);
  });
}

describe("/metrics of a pooler process", () => {
  /** A pooler process with a metrics port, given to `fn` once it listens; killed after. */
  async function withMetricsProcess(
    fn: (metricsPort: number, p: PoolerProcess) => Promise<void>,
  ): Promise<void> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const p = spawnPooler([], {
      DATABASE_URL: inject("pgAppUrl"),
      LISTEN_PORT: String(port),
      METRICS_PORT: String(metricsPort),
    });
    try {
      await waitFor(() => p.output().includes('"listening"'), "the pooler to listen", 15_000);
      await fn(metricsPort, p);
    } finally {
      p.child.kill("SIGKILL");
    }
  }

  it("answers a request target that is not a valid URL with 404, and goes on serving", () =>
    withMetricsProcess(async (metricsPort, p) => {
      // "//[" is a network-path reference with a broken host: new URL() throws on it
      expect(await rawRequest(metricsPort, "//[")).toBe("HTTP/1.1 404 Not Found");
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
      expect(p.child.exitCode).toBeNull();
    }));

  it("goes on serving after scrapers that went away before their scrape was rendered", () =>
    withMetricsProcess(async (metricsPort, p) => {
      // a scraper's timeout shorter than the scrape: it resets the connection while the body is made
      for (let i = 0; i < 5; i++) {
        const socket = net.connect(metricsPort, "127.0.0.1");
        await once(socket, "connect");
        socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", () => socket.resetAndDestroy());
        await once(socket, "close");
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(p.child.exitCode).toBeNull();
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    }));
});
