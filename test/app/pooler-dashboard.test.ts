// /admin/pooler/ with supertest: who may see it, what data.json holds, and that its numbers are
// the pooler's own. The dashboard watches a pooler of this file's own, whose only clients are the
// ones the test opens, so the numbers hold still while they are compared with SHOW POOLS.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import request from "supertest";
import { MemoryStore } from "express-session";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../app/app.ts";
import { loadConfig, poolerConsoleUrl } from "../../app/config.ts";
import { readConsole } from "../../app/pooler/console.ts";
import { PoolerMonitor } from "../../app/pooler/monitor.ts";
import type { DashboardData, PoolView } from "../../app/pooler/samples.ts";
import { connect } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { createHarness, createUser, logIn, settings, type Agent, type Harness } from "./support.ts";

const POOL_SIZE = 3;
const MAX_DB_CONNECTIONS = 5;

let watched: TestPooler;
let metricsUrl: string;
let h: Harness;
let admin: pg.Client;
let agent: Agent;
const opened: pg.Client[] = [];

beforeAll(async () => {
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  watched = await startTestPooler({
    DEFAULT_POOL_SIZE: String(POOL_SIZE),
    MAX_DB_CONNECTIONS: String(MAX_DB_CONNECTIONS),
    METRICS_PORT: String(metricsPort),
  });
  h = await createHarness({
    poolerMonitor: {
      adminUrl: watched.url("pgbouncer"),
      metricsUrl,
    },
  });
  admin = await connect(watched.url("pgbouncer"));
  const staff = await createUser(h, { isSuperuser: false });
  ({ agent } = await logIn(h.app, staff.username));
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.end()));
});

afterAll(async () => {
  await admin?.end();
  await h?.close();
  await watched?.stop();
});

async function client(): Promise<pg.Client> {
  const c = await connect(watched.url("app"));
  opened.push(c);
  return c;
}

/** The pool of the watched pooler's "app" database, as SHOW POOLS and SHOW DATABASES tell it now. */
async function showPool(): Promise<Record<string, unknown>> {
  const pools = await admin.query("SHOW POOLS");
  const row = pools.rows.find((r) => r.database === "app")!;
  const dbs = await admin.query("SHOW DATABASES");
  const db = dbs.rows.find((r) => r.name === "app")!;
  return {
    database: row.database,
    user: row.user,
    cl_active: row.cl_active,
    cl_waiting: row.cl_waiting,
    sv_active: row.sv_active,
    sv_idle: row.sv_idle,
    pool_size: db.pool_size,
    max_connections: db.max_connections,
  };
}

async function xactCount(): Promise<number> {
  const stats = await admin.query("SHOW STATS");
  return Number(stats.rows.find((r) => r.database === "app")!.total_xact_count);
}

async function data(): Promise<DashboardData> {
  const res = await agent
    .get("/admin/pooler/data.json")
    .expect(200)
    .expect("Content-Type", /^application\/json/);
  expect(res.headers["cache-control"]).toContain("no-store");
  return res.body as DashboardData;
}

/** data.json once it holds a sample taken after this call: the pooler's state as of now or later. */
async function freshData(): Promise<DashboardData> {
  const since = Date.now();
  let latest: DashboardData | undefined;
  await expect
    .poll(async () => (latest = await data()).sampledAt, { timeout: 10_000 })
    .toBeGreaterThan(since);
  return latest!;
}

function appPool(d: DashboardData): PoolView {
  const pool = d.pools.find((p) => p.database === "app");
  if (!pool) throw new Error(`no "app" pool in ${JSON.stringify(d.pools.map((p) => p.database))}`);
  return pool;
}

describe("settings", () => {
  const base = { DATABASE_URL: "postgresql://app:s%40cret@pooler:5432/postgres?sslmode=disable" };
  const load = (env: Record<string, string>) => loadConfig({ ...base, ...env }, () => {});

  it("reads the console as DATABASE_URL's user, on the virtual database pgbouncer, unless told otherwise", () => {
    expect(load({})).toMatchObject({
      poolerAdminUrl: "postgresql://app:s%40cret@pooler:5432/pgbouncer?sslmode=disable",
      poolerMetricsUrl: undefined,
    });
    const given = {
      POOLER_ADMIN_URL: "postgresql://stats:pw@pooler:5432/pgbouncer",
      POOLER_METRICS_URL: "http://pooler:9127/metrics",
    };
    expect(load(given)).toMatchObject({
      poolerAdminUrl: given.POOLER_ADMIN_URL,
      poolerMetricsUrl: given.POOLER_METRICS_URL,
    });
    expect(() => load({ POOLER_METRICS_URL: "pooler:9127" })).toThrow(/POOLER_METRICS_URL: must be an http/);
    expect(() => load({ POOLER_ADMIN_URL: "mysql://pooler/pgbouncer" })).toThrow(
      /POOLER_ADMIN_URL: must be a postgresql/,
    );
  });
});

describe("access", () => {
  it("sends anonymous visitors to the login page, as every admin page", async () => {
    await request(h.app)
      .get("/admin/pooler/")
      .expect(302)
      .expect("Location", "/admin/login/?next=/admin/pooler/");
    await request(h.app)
      .get("/admin/pooler/data.json")
      .expect(302)
      .expect("Location", "/admin/login/?next=/admin/pooler/data.json");
  });

  it("shows staff the page, its scripts and uPlot served by the app itself", async () => {
    const index = await agent.get("/admin/").expect(200);
    expect(index.text).toContain('<a href="/admin/pooler/">Pools</a>');
    await agent.get("/admin/pooler").expect(301).expect("Location", "/admin/pooler/");
    const res = await agent.get("/admin/pooler/").expect(200);
    expect(res.text).toContain("<title>Pooler | Django site admin</title>");
    expect(res.text).toContain('<table id="pooler-pools" data-url="/admin/pooler/data.json">');
    // Only external scripts: the Content-Security-Policy refuses inline ones.
    expect(res.text).not.toMatch(/<script(?![^>]*\ssrc=)/);
    for (const src of ["/static/vendor/uplot/uPlot.iife.min.js", "/static/pooler.js"]) {
      expect(res.text).toContain(`<script src="${src}" defer></script>`);
      await agent
        .get(src)
        .expect(200)
        .expect("Content-Type", /javascript/);
    }
    await agent
      .get("/static/vendor/uplot/uPlot.min.css")
      .expect(200)
      .expect("Content-Type", /text\/css/);
  });
});

describe("data.json", () => {
  it("shows the pool as SHOW POOLS does: 3 clients in transactions on all 3 servers, 2 queued", async () => {
    const holders = [await client(), await client(), await client()];
    for (const c of holders) await c.query("BEGIN; SELECT 1");
    const waiters = [await client(), await client()];
    const answered = waiters.map((c) => c.query("SELECT 1"));
    const expected = {
      database: "app",
      user: "postgres",
      cl_active: 3,
      cl_waiting: 2,
      sv_active: POOL_SIZE,
      sv_idle: 0,
      pool_size: POOL_SIZE,
      max_connections: MAX_DB_CONNECTIONS,
    };
    await expect.poll(showPool, { timeout: 5000 }).toEqual(expected);

    const d = await freshData();
    // Nothing moved while the dashboard sampled: its numbers are SHOW POOLS's.
    expect(await showPool()).toEqual(expected);
    const pool = appPool(d);
    expect(pool.latest).toMatchObject(expected);
    expect(pool.latest.maxwait_ms).toBeGreaterThan(0);
    expect(d).toMatchObject({ error: null, warning: null, p99: true, intervalMs: 1000, windowMs: 120_000 });
    // The page's columns: one value per sample time, newest last.
    expect(d.t.at(-1)).toBe(d.sampledAt! / 1000);
    for (const values of Object.values(pool.series)) expect(values).toHaveLength(d.t.length);
    expect(pool.series.cl_waiting.at(-1)).toBe(2);
    expect(d.pools.map((p) => p.database)).not.toContain("pgbouncer");

    for (const c of holders) await c.query("COMMIT");
    await Promise.all(answered);
  });

  it("computes transactions per second from SHOW STATS, so they add up to its count", async () => {
    const c = await client();
    const before = await xactCount();
    const from = (await freshData()).sampledAt! / 1000;
    for (let i = 0; i < 30; i++) await c.query("SELECT 1");
    expect((await xactCount()) - before).toBe(30);
    const d = await freshData();
    const { tps } = appPool(d).series;
    let sum = 0;
    for (let i = 1; i < d.t.length; i++) if (d.t[i]! > from) sum += tps[i]! * (d.t[i]! - d.t[i - 1]!);
    // Times are epoch seconds in floating point: exact to a few decimals.
    expect(sum).toBeCloseTo(30, 3);
  });

  it("shows the waits of clients that queued for a server, the p99 from the pooler's histogram", async () => {
    const holder = await client();
    await holder.query("BEGIN; SELECT 1");
    const others = [await client(), await client()];
    await Promise.all(others.map((c) => c.query("BEGIN; SELECT 1")));
    const waiter = await client();
    const answered = waiter.query("SELECT 1");
    await expect.poll(async () => (await showPool()).cl_waiting, { timeout: 5000 }).toBe(1);
    const queuedBy = Date.now();
    await freshData();
    const waitedAtLeast = Date.now() - queuedBy;
    for (const c of [holder, ...others]) await c.query("COMMIT");
    await answered;

    const d = await freshData();
    const { avg_wait_ms, p99_wait_ms } = appPool(d).series;
    const max = (values: (number | null)[]) => Math.max(...values.map((v) => v ?? 0));
    // The one client that got a server in that second is the one that waited.
    expect(max(avg_wait_ms)).toBeGreaterThanOrEqual(waitedAtLeast);
    // Interpolated within its bucket, whose bounds are at most 2.5 times apart at this size.
    expect(max(p99_wait_ms)).toBeGreaterThanOrEqual(waitedAtLeast / 2.5);
  });
});

describe("an unreachable pooler", () => {
  it("is an error message in the data, and the page still shows", async () => {
    const nobody = await freePort();
    const monitor = new PoolerMonitor({
      adminUrl: `postgresql://postgres:postgres@127.0.0.1:${nobody}/pgbouncer`,
    });
    const app = createApp({
      config: settings,
      prisma: h.db.prisma,
      sessionStore: new MemoryStore(),
      poolerMonitor: monitor,
    });
    try {
      const staff = await createUser(h);
      const { agent: other } = await logIn(app, staff.username);
      await other.get("/admin/pooler/").expect(200);
      const res = await other.get("/admin/pooler/data.json").expect(200);
      expect(res.body).toMatchObject({ sampledAt: null, pools: [], t: [] });
      expect(res.body.error).toBe(
        `The pooler's admin console could not be read: connect ECONNREFUSED 127.0.0.1:${nobody}. ` +
          "Check POOLER_ADMIN_URL (by default DATABASE_URL on database pgbouncer): its user must be in " +
          "the pooler's admin_users or stats_users.",
      );
    } finally {
      await monitor.close();
    }
  });
});

describe("PoolerMonitor", () => {
  /** Console sessions of the dashboard on the harness's own pooler, which nothing else watches. */
  async function dashboardSessions(session: pg.Client): Promise<number> {
    const clients = await session.query("SHOW CLIENTS");
    return clients.rows.filter((r) => r.database === "pgbouncer" && r.application_name === "pooler-dashboard")
      .length;
  }

  it("reads through one console session however many ask, and closes it when nobody has for a while", async () => {
    const adminUrl = poolerConsoleUrl(h.database.url);
    const session = await connect(adminUrl);
    const monitor = new PoolerMonitor({ adminUrl, intervalMs: 50, idleMs: 300 });
    try {
      const answers = await Promise.all([monitor.watch(), monitor.watch(), monitor.watch()]);
      for (const answer of answers) expect(answer.sampledAt).not.toBeNull();
      expect(await dashboardSessions(session)).toBe(1);
      await expect.poll(() => dashboardSessions(session), { timeout: 3000 }).toBe(0);
      // The next viewer starts afresh.
      expect((await monitor.watch()).t).toHaveLength(1);
    } finally {
      await monitor.close();
      await session.end();
    }
  });
});

describe("a metrics endpoint that fails now and then", () => {
  /** One scrape for every entry: "ok" passes the pooler's metrics on, "fail" answers 503. */
  const SCRAPES = ["fail", "ok", "fail", "fail", "ok", "fail", "fail", "fail"] as const;

  it("keeps the last histograms, so the p99 spans the failed reads, and warns only with none kept or three failures in a row", async () => {
    let scrapes = 0;
    // The warning as each scrape begins: what the page showed after the read before it.
    const warnings: (string | null)[] = [];
    const proxy = http.createServer((_req, res) => {
      const turn = SCRAPES[scrapes++] ?? "fail";
      void (async () => {
        if (scrapes > 1) warnings.push((await monitor.watch()).warning);
        // Between the last good scrape and the next one, a client waits for a server.
        if (scrapes === 3) await queueOneClient();
        if (turn === "fail") return res.writeHead(503).end();
        const upstream = await fetch(metricsUrl);
        res.writeHead(upstream.status, { "Content-Type": "text/plain" }).end(await upstream.text());
      })().catch((err: unknown) => res.destroy(err as Error));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const monitor = new PoolerMonitor({
      adminUrl: watched.url("pgbouncer"),
      metricsUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/metrics`,
      intervalMs: 100,
    });
    try {
      const first = await monitor.watch();
      // Nothing kept yet: the first failure is a warning at once.
      expect(first.warning).toMatch(/^The pooler's metrics could not be read, so there is no p99 wait: /);
      await expect.poll(() => warnings.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(SCRAPES.length);
      const w = warnings.slice(0, SCRAPES.length).map((text) => (text === null ? "-" : "warning"));
      expect(w).toEqual(["warning", "-", "-", "-", "-", "-", "-", "warning"]);
      // The wait happened while two reads failed; the good read after them still has its p99.
      const p99 = appPool(await monitor.watch()).series.p99_wait_ms.filter((v) => v !== null);
      expect(p99).toHaveLength(1);
      expect(p99[0]).toBeGreaterThan(0);
    } finally {
      await monitor.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  /** A client queued behind the pool's servers, each held in a transaction, until they commit. */
  async function queueOneClient(): Promise<void> {
    const holders = await Promise.all(Array.from({ length: POOL_SIZE }, client));
    await Promise.all(holders.map((c) => c.query("BEGIN; SELECT 1")));
    const waiter = await client();
    const answered = waiter.query("SELECT 1");
    await expect.poll(async () => (await showPool()).cl_waiting, { timeout: 5000 }).toBe(1);
    await Promise.all(holders.map((c) => c.query("COMMIT")));
    await answered;
  }
});

describe("readConsole", () => {
  it("counts a server that awaits server_check_query (SHOW POOLS' sv_used) as idle: it is free for the next client", async () => {
    const checked = await startTestPooler({ SERVER_CHECK_DELAY: "0.2" });
    const [c, session] = await Promise.all([connect(checked.url("app")), connect(checked.url("pgbouncer"))]);
    try {
      await c.query("SELECT 1");
      await new Promise((r) => setTimeout(r, 500));
      const { rows } = await session.query("SHOW POOLS");
      expect(rows.find((r) => r.database === "app")).toMatchObject({ sv_idle: 0, sv_used: 1 });
      const { pools } = await readConsole(session);
      expect(pools.find((p) => p.database === "app")).toMatchObject({ sv_active: 0, sv_idle: 1 });
    } finally {
      await Promise.all([c.end(), session.end()]);
      await checked.stop();
    }
  });
});
