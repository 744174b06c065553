// /admin/pooler/ in a real browser, against the real server and a pooler of 20 server connections
// per pool. `npm run load` makes the picture move: 200 HTTP clients at the post list (through the
// app's 100 connections) and 500 clients of the pooler on a second database. The screenshot under
// load is the README's (docs/pooler-dashboard.png, rewritten when UPDATE_README_SCREENSHOT=1).
// Then 500 clients of the test's own are held still on that database (20 in transactions on the
// 20 servers, 480 queued) and the numbers the page shows are compared with SHOW POOLS.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startServer, type RunningServer } from "../../app/server.ts";
import type { DashboardData } from "../../app/pooler/samples.ts";
import { createSchema } from "../app/support.ts";
import { connect } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import {
  ARTIFACTS,
  createSuperuserByCommand,
  launchChromium,
  logInOnPage,
  serverEnv,
  watchProblems,
} from "./support.ts";

const POOL_SIZE = 20;
const MAX_DB_CONNECTIONS = 30;
const CLIENTS = 500;
/** The app, the pooler and the test share one process here: 200 keep it busy, 500 would mostly wait. */
const HTTP_CLIENTS = 200;
/** More app connections than the pool has servers, so that the app's requests queue in the pooler. */
const APP_DB_POOL_MAX = 100;
const LOAD_SECONDS = 30;
/** Samples (a second apart) of history under load that the screenshot's charts show. */
const HISTORY = 8;
const USERNAME = "operator";
const PASSWORD = "amber-lantern-42";
/** The README's picture, rewritten only on request: a run on a busy machine draws a poorer one. */
const README_SHOT = process.env.UPDATE_README_SCREENSHOT
  ? path.resolve("docs/pooler-dashboard.png")
  : undefined;
/** The fields the page and SHOW POOLS (with SHOW DATABASES' limits) both have. */
const FIELDS = ["cl_active", "cl_waiting", "sv_active", "sv_idle", "pool_size", "max_connections"] as const;

let pooler: TestPooler;
let schema: Awaited<ReturnType<typeof createSchema>>;
let server: RunningServer;
let browser: Browser;
let admin: pg.Client;

beforeAll(async () => {
  browser = await launchChromium();
  const metricsPort = await freePort();
  // No database name: the pooler serves any (PgBouncer's "*"), so the test's clients get a pool of
  // their own on "postgres" beside the app's on "app", and hold still while the app keeps moving.
  const server13 = new URL(inject("pgAppUrl"));
  server13.pathname = "";
  pooler = await startTestPooler({
    DATABASE_URL: server13.toString(),
    DEFAULT_POOL_SIZE: String(POOL_SIZE),
    MAX_DB_CONNECTIONS: String(MAX_DB_CONNECTIONS),
    // 500 of the test's clients, the app's 100 and its session store's, and the consoles.
    MAX_CLIENT_CONN: "1000",
    METRICS_PORT: String(metricsPort),
  });
  schema = await createSchema(inject("pgAppUrl"));
  const env = serverEnv(pooler.url("app"), schema.name, {
    DB_POOL_MAX: String(APP_DB_POOL_MAX),
    POOLER_METRICS_URL: `http://127.0.0.1:${metricsPort}/metrics`,
  });
  server = await startServer(env);
  await createSuperuserByCommand(env, USERNAME, PASSWORD);
  await seedPosts(30);
  admin = await connect(pooler.url("pgbouncer"));
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await browser?.close();
  await server?.close();
  await pooler?.stop();
  await schema?.drop();
});

/** Something for the post list to read. */
async function seedPosts(count: number): Promise<void> {
  const c = await connect(inject("pgAppUrl"));
  try {
    await c.query(
      `INSERT INTO ${schema.name}.core_post (title, content, updated_at)
       SELECT 'Post ' || i, repeat('Pooled connections, served in turn. ', 8), now() FROM generate_series(1, $1) i`,
      [count],
    );
  } finally {
    await c.end();
  }
}

async function openClients(count: number): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  // In batches: the pooler answers logins one event-loop turn at a time, as the app does requests.
  while (clients.length < count) {
    const batch = Math.min(50, count - clients.length);
    clients.push(
      ...(await Promise.all(Array.from({ length: batch }, () => connect(pooler.url("postgres"))))),
    );
  }
  return clients;
}

/**
 * `npm run load`: HTTP clients at the app's post list and clients of the pooler on the test's own
 * database, in a process group of its own so that a failed test can stop it.
 */
function startLoad(appUrl: string, dbUrl: string) {
  const args = ["--url", appUrl, "--connections", String(HTTP_CLIENTS), "--duration", String(LOAD_SECONDS)];
  args.push("--db-clients", String(CLIENTS), "--db-url", dbUrl);
  const child = spawn("npm", ["run", "--silent", "load", "--", ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    exited,
    output: () => output,
    stop: () => {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
    },
  };
}

/** Whether the page's last HISTORY samples, the newest included, show most of the 500 clients queued. */
function loadedLongEnough(page: Page): Promise<boolean> {
  return page.evaluate(
    async ({ clients, history }) => {
      const data = (await (await fetch("/admin/pooler/data.json")).json()) as DashboardData;
      const waiting = data.pools.find((p) => p.database === "postgres")?.series.cl_waiting ?? [];
      return waiting.length >= history && waiting.slice(-history).every((n) => n! > clients / 2);
    },
    { clients: CLIENTS, history: HISTORY },
  );
}

type Numbers = Record<string, number | null>;

/** The table row of a pool as the page shows it (data-value: the number behind the formatted text). */
function shown(page: Page, database: string): Promise<Numbers> {
  return page
    .locator(`#pooler-pools tr[data-pool="${database}/postgres"]`)
    .evaluate((row) =>
      Object.fromEntries(
        Array.from(row.querySelectorAll<HTMLElement>("[data-field]")).map((cell) => [
          cell.dataset.field!,
          cell.dataset.value === "" ? null : Number(cell.dataset.value),
        ]),
      ),
    );
}

function pick(numbers: Numbers): Numbers {
  return Object.fromEntries(FIELDS.map((f) => [f, numbers[f] ?? null]));
}

/** SHOW POOLS for the database's pool, with its limits from SHOW DATABASES: what the page should show. */
async function showPool(database: string): Promise<Numbers> {
  const pool = (await admin.query("SHOW POOLS")).rows.find((r) => r.database === database);
  const db = (await admin.query("SHOW DATABASES")).rows.find((r) => r.name === database);
  return pick({ ...pool, pool_size: db.pool_size, max_connections: db.max_connections });
}

it("shows 500 clients on 20 servers live, with the numbers of SHOW POOLS", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = watchProblems(page);
  const load = startLoad(server.url, pooler.url("postgres"));
  let clients: pg.Client[] = [];
  try {
    await page.goto(`${server.url}admin/pooler/`);
    await logInOnPage(page, USERNAME, PASSWORD, "Pooler");

    // Under load: all 500 clients of the second database are in, on 20 open servers, most of them
    // queued, with waits measured; the app's pool is busy too. Then enough history for the charts.
    await expect
      .poll(
        async () => {
          const test = await shown(page, "postgres").catch(() => null);
          const app = await shown(page, "app");
          return {
            clients: test && test.cl_active! + test.cl_waiting!,
            servers: test && test.sv_active! + test.sv_idle!,
            queued: !!test && test.cl_waiting! > CLIENTS / 2,
            measured: !!test && test.tps! > 0 && test.avg_wait_ms !== null && test.p99_wait_ms !== null,
            appBusy: app.tps! > 0,
          };
        },
        { timeout: 30_000, interval: 500 },
      )
      .toEqual({ clients: CLIENTS, servers: POOL_SIZE, queued: true, measured: true, appBusy: true });
    await expect.poll(() => loadedLongEnough(page), { timeout: 30_000, interval: 1000 }).toBe(true);
    expect(await page.locator("#pooler-status").getAttribute("data-state")).toBe("ok");
    const shot = path.join(ARTIFACTS, "dashboard-under-load.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (README_SHOT) fs.copyFileSync(shot, README_SHOT);
    await load.exited;
    console.log(load.output());
    // Every answer was a page and every query of the pooler's clients went through. Not the exit
    // code: on a busy machine some HTTP requests may time out, which is the machine, not the stack.
    expect(load.output()).toMatch(/^requests\/s: \d+ on average/m);
    expect(load.output()).toMatch(/^non-2xx responses: 0,/m);
    expect(load.output()).toMatch(/^pooler clients: \d+ transactions\/s$/m);
    expect(load.output()).not.toContain("query failed");

    // Held still: 20 clients in transactions on the 20 servers, the other 480 queued behind them.
    clients = await openClients(CLIENTS);
    const holders = clients.slice(0, POOL_SIZE);
    await Promise.all(holders.map((c) => c.query("BEGIN; SELECT 1")));
    const answered = clients.slice(POOL_SIZE).map((c) => c.query("SELECT 1"));
    const still = { cl_active: POOL_SIZE, cl_waiting: CLIENTS - POOL_SIZE, sv_active: POOL_SIZE, sv_idle: 0 };
    await expect.poll(() => showPool("postgres"), { timeout: 10_000 }).toMatchObject(still);
    const expected = await showPool("postgres");
    expect(expected).toMatchObject({ pool_size: POOL_SIZE, max_connections: MAX_DB_CONNECTIONS });
    // The page samples once a second: give it a few to catch up.
    await expect.poll(async () => pick(await shown(page, "postgres")), { timeout: 10_000 }).toEqual(expected);
    expect(await showPool("postgres")).toEqual(expected);
    // The app's pool keeps moving, but its limits are the pooler's.
    expect(pick(await shown(page, "app"))).toMatchObject({
      pool_size: POOL_SIZE,
      max_connections: MAX_DB_CONNECTIONS,
    });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-held.png"), fullPage: true });

    await Promise.all(holders.map((c) => c.query("COMMIT")));
    await Promise.all(answered);
    expect(problems).toEqual([]);
  } catch (err) {
    await page
      .screenshot({ path: path.join(ARTIFACTS, "dashboard-failure.png"), fullPage: true })
      .catch(() => undefined);
    throw err;
  } finally {
    load.stop();
    await Promise.all(clients.map((c) => c.end()));
    await context.close();
  }
}, 180_000);
