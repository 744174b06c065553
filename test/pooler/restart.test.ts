// PostgreSQL restarted (fast and immediate shutdown) under load through the pooler: transactions in
// flight end with an error and none hangs, new transactions succeed again within 5 s of the server
// being ready, the pooler probes a down server gently, and no server connection outlives the
// restart. The fast case runs PgBouncer 1.18 (defaults) beside ours, on the same restart, for figures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wallClock } from "../../pooler/clock.ts";
import { createDatabase } from "../../scripts/lib/migrations.ts";
import { connect, errorOf, pgbench } from "../support/clients.ts";
import { startLoad, type Transaction } from "../support/load.ts";
import { PGBOUNCER_BIN, hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { createLoginRole, dropRole } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";

const CLIENTS = 20;
const POOL_SIZE = 20;
const DOWN_MS = 1500;
const WARMUP_MS = 1000;
/** PgBouncer waits out server_login_retry (15 s) after the restart: give it that and some. */
const PGBOUNCER_PATIENCE_MS = 20_000;

let pg: PrivatePostgres;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  await createDatabase(pg.url(), "bench");
  const init = await pgbench(pg.url("bench"), ["-i", "-s", "1", "-q"]);
  if (!/done/.test(init.output)) throw new Error(`pgbench -i failed: ${init.output}`);
}, 120_000);

afterAll(() => pg?.stop());

/** When the first transaction ending after `since` succeeded: the load has recovered. */
function recoveredAt(txns: readonly Transaction[], since: number): number | null {
  let first: number | null = null;
  for (const t of txns) if (t.ok && t.end > since && (first === null || t.end < first)) first = t.end;
  return first;
}

/** Failed transactions by SQLSTATE (or, for the client library's own errors, by message). */
function errorCodes(txns: readonly Transaction[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const t of txns) {
    if (t.ok) continue;
    const key = t.code ?? t.message ?? "?";
    codes[key] = (codes[key] ?? 0) + 1;
  }
  return codes;
}

const seconds = (ms: number | null): string => (ms === null ? "none" : `${(ms / 1000).toFixed(2)} s`);

describe.each([
  { mode: "fast", compare: true },
  { mode: "immediate", compare: false },
] as const)("PostgreSQL restarted ($mode shutdown) under load", ({ mode, compare }) => {
  it("in-flight transactions end with an error, none hangs; new ones succeed within 5 s; all servers are new", async () => {
    // VERBOSE=1: the pool logs every server connection it opens, which counts the attempts
    const ours = await startTestPooler({
      DATABASE_URL: pg.url("bench"),
      DEFAULT_POOL_SIZE: String(POOL_SIZE),
      VERBOSE: "1",
    });
    if (compare && !hasPgBouncer())
      console.log(`PgBouncer comparison skipped: ${PGBOUNCER_BIN} is not installed`);
    const bouncer =
      compare && hasPgBouncer()
        ? await startPgBouncer(
            { bench: `host=127.0.0.1 port=${pg.port} dbname=bench` },
            { pool_mode: "transaction", default_pool_size: POOL_SIZE },
          )
        : null;
    const load = startLoad(ours.url("bench"), CLIENTS);
    const bouncerLoad = bouncer && startLoad(bouncer.url("bench"), CLIENTS);
    let stopped = false;
    const stopLoads = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await Promise.all([load.stop(), bouncerLoad?.stop()]);
    };
    try {
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      expect(recoveredAt(load.transactions, 0), "the load runs before the restart").not.toBeNull();
      const downAt = Date.now();
      await pg.restart(mode, DOWN_MS);
      const readyAt = Date.now();
      await waitFor(
        () =>
          recoveredAt(load.transactions, readyAt) !== null &&
          (bouncerLoad === null ||
            recoveredAt(bouncerLoad.transactions, readyAt) !== null ||
            Date.now() - readyAt > PGBOUNCER_PATIENCE_MS),
        "the load to recover",
        PGBOUNCER_PATIENCE_MS + 5000,
      );
      const recovered = recoveredAt(load.transactions, readyAt)!;
      // the load goes on for a while: nothing may fail once it has recovered
      await new Promise((r) => setTimeout(r, 1000));

      // none hangs: every client finishes the transaction it is in promptly
      const stopStart = Date.now();
      await stopLoads();
      const stopMs = Date.now() - stopStart;
      expect(stopMs).toBeLessThan(5000);
      const txns = load.transactions;
      const longest = txns.reduce((max, t) => Math.max(max, t.end - t.start), 0);
      expect(longest).toBeLessThan(readyAt - downAt + 5000);

      // in-flight transactions got an error; after the recovery nothing fails (no stale server)
      const failed = txns.filter((t) => !t.ok);
      expect(failed.length).toBeGreaterThan(0);
      const failedAfter = failed.filter((t) => t.start >= recovered);
      expect(failedAfter, JSON.stringify(failedAfter.slice(0, 3))).toEqual([]);

      // within 5 s of PostgreSQL being ready again
      expect(recovered - readyAt).toBeLessThan(5000);

      // gentle on a server that is down: a few probes, not one per waiting client and retry
      const attempts = ours.logs.filter(
        (l) =>
          l.msg === "new server connection" && (l.time as number) > downAt && (l.time as number) <= readyAt,
      ).length;
      const downSeconds = (readyAt - downAt) / 1000;
      expect(attempts).toBeLessThanOrEqual(6 + Math.ceil(downSeconds));
      const loginFailures = ours.logs.filter((l) => l.msg === "server login failed").length;
      expect(loginFailures).toBeLessThanOrEqual(attempts);

      // every server of the pool was opened after the restart
      const servers = [...ours.pooler.pools.values()].flatMap((p) => p.allServers());
      expect(servers.length).toBeGreaterThan(0);
      expect(servers.filter((s) => wallClock(s.connectTime) <= downAt)).toEqual([]);

      const ok = txns.filter((t) => t.ok).length;
      console.log(
        `${mode} restart, ${CLIENTS} clients, pool ${POOL_SIZE}: PostgreSQL down ${seconds(readyAt - downAt)}; ` +
          `ours: first success ${seconds(recovered - readyAt)} after ready, ${attempts} server connection attempts while down, ` +
          `${ok} ok / ${failed.length} failed (${JSON.stringify(errorCodes(txns))}), longest transaction ${seconds(longest)}`,
      );
      if (bouncer && bouncerLoad) {
        const theirs = recoveredAt(bouncerLoad.transactions, readyAt);
        console.log(
          `${mode} restart, PgBouncer 1.18 (defaults, server_login_retry 15 s) on the same restart: first success ` +
            `${theirs === null ? `none within ${seconds(PGBOUNCER_PATIENCE_MS)}` : seconds(theirs - readyAt)} after ready, ` +
            `failed ${JSON.stringify(errorCodes(bouncerLoad.transactions))} | ours: ${seconds(recovered - readyAt)}`,
        );
      }
    } finally {
      await stopLoads();
      await ours.stop();
      await bouncer?.stop();
    }
  }, 60_000);
});

describe("a pooler whose server is down when its first client comes", () => {
  it("the client waits for the restart instead of being refused, and is served once PostgreSQL is ready", () =>
    withTestPooler({ DATABASE_URL: pg.url("bench") }, async (p) => {
      const readyAt = pg.restart("fast", DOWN_MS).then(() => Date.now());
      await new Promise((r) => setTimeout(r, 300)); // PostgreSQL is shutting down or down
      const started = Date.now();
      const c = await connect(p.url("bench"));
      try {
        const r = await c.query("SELECT count(*)::int AS n FROM pgbench_branches");
        const servedAt = Date.now();
        expect(r.rows[0].n).toBe(1);
        const afterReady = servedAt - (await readyAt);
        console.log(
          `first client during a restart: served ${seconds(servedAt - started)} after it came, ` +
            `${seconds(afterReady)} after PostgreSQL was ready`,
        );
        expect(afterReady).toBeLessThan(5000);
      } finally {
        await c.end();
        await readyAt;
      }
    }));
});

describe("a user found by auth_query while PostgreSQL restarts", () => {
  const role = "pooler_restart_auth_query";
  const env = (): Record<string, string> => ({ DATABASE_URL: pg.url("bench"), AUTH_USER: "postgres" });
  const login = (p: TestPooler): ReturnType<typeof connect> => connect(p.urlAs(role, "aq-pw", "bench"));

  beforeAll(() => createLoginRole(pg.url(), role, "aq-pw", "md5"));
  afterAll(() => dropRole(pg.url(), role));

  it("waits for the restart, as PgBouncer's lookup on a pooled server does, and logs in", () =>
    withTestPooler(env(), async (p) => {
      const readyAt = pg.restart("fast", DOWN_MS).then(() => Date.now());
      await new Promise((r) => setTimeout(r, 300)); // PostgreSQL is shutting down or down
      try {
        const c = await login(p);
        expect((await c.query("SELECT current_user AS u")).rows[0].u).toBe(role);
        expect(Date.now() - (await readyAt)).toBeLessThan(5000);
        await c.end();
      } finally {
        await readyAt;
      }
    }));

  it("is refused at query_wait_timeout if PostgreSQL stays down longer", () =>
    withTestPooler({ ...env(), QUERY_WAIT_TIMEOUT: "1" }, async (p) => {
      const readyAt = pg.restart("fast", 4000);
      await new Promise((r) => setTimeout(r, 300));
      try {
        const started = Date.now();
        expect((await errorOf(login(p))).message).toBe("authentication lookup failed");
        expect(Date.now() - started).toBeGreaterThan(500);
        expect(Date.now() - started).toBeLessThan(2500);
      } finally {
        await readyAt;
      }
    }));
});

describe("pgbench through the pooler while PostgreSQL restarts", () => {
  it(
    "pgbench's clients in flight abort with the error and it ends on time; a pgbench started at once after runs clean",
    () =>
      withTestPooler({ DATABASE_URL: pg.url("bench"), DEFAULT_POOL_SIZE: String(POOL_SIZE) }, async (p) => {
        const durationS = 4;
        const started = Date.now();
        const during = pgbench(p.url("bench"), ["-c", String(CLIENTS), "-j", "2", "-T", String(durationS)]);
        await new Promise((r) => setTimeout(r, WARMUP_MS));
        await pg.restart("fast", DOWN_MS);
        const readyAt = Date.now();
        const r1 = await during;
        const endedAfter = Date.now() - started;
        // pgbench stops a client at its first error: the run ends (early, or at -T), never hangs
        expect(endedAfter).toBeLessThan(durationS * 1000 + 5000);
        expect(r1.output).toMatch(/terminating connection due to administrator command|server closed|57P01/);
        const aborted = (r1.output.match(/client \d+ (?:script \d+ )?aborted/g) ?? []).length;
        expect(aborted).toBeGreaterThan(0);
        const secondStart = Date.now();
        const r2 = await pgbench(p.url("bench"), ["-c", String(CLIENTS), "-j", "2", "-T", "2"]);
        expect(r2.failed, r2.output).toBe(0);
        expect(r2.processed).toBeGreaterThan(0);
        expect(r2.output).not.toMatch(/aborted|error/i);
        console.log(
          `pgbench during a fast restart: ${aborted} of ${CLIENTS} clients aborted with the error, the run ended ` +
            `after ${seconds(endedAfter)} (-T ${durationS}); a pgbench started ${seconds(secondStart - readyAt)} ` +
            `after ready: ${r2.processed} transactions, ${r2.failed} failed`,
        );
      }),
    60_000,
  );
});
