// Chaos under load (issue 7): clients killed at random points of their transactions — between
// messages, mid-query, half-way through a message, mid-pipeline, mid-COPY — 1,000 times, while a
// terminator kills random server backends and honest clients keep checking that they see only
// their own session. Afterwards PostgreSQL holds no transaction, lock or temp table of anyone who
// left. CHAOS_SEED=<n> replays a run's choices (each run prints its seed); CHAOS_KILLS=<n> changes
// the number of kills. And, exactly, the rarest moment a terminator can hit: right after a login.
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bind, copyData, errorResponse, execute, parse, query } from "../../pooler/protocol/messages.ts";
import { connect, errorOf } from "../support/clients.ts";
import { startFakePostgres } from "../support/fake-postgres.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { RawClient, type Reply } from "../support/protocol.ts";
import { UserlistDir } from "../support/roles.ts";
import { seedFrom, seededRandom, type Random } from "../support/random.ts";
import { waitFor } from "../support/wait.ts";

const KILLS = Number(process.env.CHAOS_KILLS ?? 1000);
const VICTIM_WORKERS = 24;
const HONEST_CLIENTS = 6;
const ROWS = 64;
/** Room for every victim and honest client at once (session mode holds one server per client). */
const POOL_SIZE = 40;
/** Longer than any wait a live lock holder causes (victims hold locks for milliseconds): a stuck client. */
const REPLY_TIMEOUT_MS = 15_000;

const KILL_MODES = ["after", "inflight", "half", "pipelined"] as const;
type KillMode = (typeof KILL_MODES)[number];

/** connect_query of the third run: every client's starting point, which victims RESET or SET away. */
const BASELINE_QUERY = "SET app.base = 'base'";

/**
 * True in a session nobody else left anything in: no setting, temp table, advisory lock or open
 * transaction (a leftover FOR UPDATE or UPDATE would have assigned a transaction id); with a
 * `baseline`, connect_query's setting is there, whatever the clients before did to theirs.
 */
function cleanSessionSql(baseline: boolean): string {
  return `SELECT coalesce(current_setting('app.client', true), '') = ''
  AND NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = pg_my_temp_schema())
  AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')
  AND txid_current_if_assigned() IS NULL
  ${baseline ? "AND current_setting('app.base', true) = 'base'" : ""} AS clean`;
}

/** What departed clients could have left behind, as PostgreSQL itself sees it (the observer excluded). */
const LEFTOVERS_SQL = `SELECT
  (SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle')::int AS busy,
  (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE a.backend_type = 'client backend' AND l.pid <> pg_backend_pid())::int AS locks,
  (SELECT count(*) FROM pg_class WHERE relpersistence = 't')::int AS temp_tables`;

interface Step {
  msg: Buffer;
  /** The reply type that ends this step ("Z" ReadyForQuery, "G" CopyInResponse); null: none comes. */
  until: string | null;
}

interface Figures {
  kills: Record<KillMode, number>;
  /** Victim iterations ended by the terminator (or a refusal) before the victim could kill itself. */
  lostVictims: number;
  terminations: number;
  honestOk: number;
  honestFailed: number;
  freshChecks: number;
  /** Anything a client saw of another client's session. */
  violations: string[];
  /** Clients that waited REPLY_TIMEOUT_MS for a reply: a lock or transaction nobody released. */
  stuck: number;
  errors: Map<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A victim's transaction: locks, settings, session state and a last step to die in; with a
 * `baseline`, also an attack on connect_query's setting first (drawn only then, so that the runs
 * without one replay a seed as before).
 */
function victimPlan(r: Random, n: number, baseline: boolean): Step[] {
  const q = (sql: string, until = "Z"): Step => ({ msg: query(sql), until });
  const row = r.int(1, ROWS);
  const steps: Step[] = [];
  if (baseline) {
    const attack = [`SET app.base = 'victim-${n}'`, "RESET ALL", "DISCARD ALL", "RESET app.base", null][
      r.int(0, 4)
    ];
    if (attack) steps.push(q(attack));
  }
  if (r.chance(0.5)) steps.push(q(`SET app.client = 'victim-${n}'`));
  steps.push(
    q("BEGIN"),
    q(`SELECT n FROM chaos WHERE id = ${row} FOR UPDATE`),
    q(`SELECT pg_advisory_xact_lock(${r.int(1, ROWS)})`),
    q(`SET LOCAL app.client = 'victim-local-${n}'`),
    q(`UPDATE chaos SET n = n + 1 WHERE id = ${row}`),
  );
  if (r.chance(0.3)) steps.push(q(`SELECT pg_try_advisory_lock(${r.int(1, ROWS)})`));
  if (r.chance(0.3)) steps.push(q(`CREATE TEMP TABLE victim_${n} (x int)`));
  switch (r.int(0, 3)) {
    case 0:
      steps.push(q("COPY chaos (id, n) FROM STDIN", "G"), {
        msg: copyData(Buffer.from(`${ROWS + n}\t1\n`)),
        until: null,
      });
      break;
    case 1:
      steps.push(q("COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g) TO STDOUT"));
      break;
    case 2:
      steps.push(q("SELECT pg_sleep(0.05)"));
      break;
    default:
      // extended protocol, no Sync yet: the server is mid-batch
      steps.push({
        msg: Buffer.concat([parse("", "SELECT pg_sleep(0.02)"), bind("", ""), execute()]),
        until: null,
      });
  }
  return steps;
}

class Stuck extends Error {}

/** Replies up to the one ending the step (or ReadyForQuery, after an error). */
async function runStep(c: RawClient, step: Step): Promise<Reply[]> {
  c.send(step.msg);
  const out: Reply[] = [];
  while (step.until !== null) {
    const m = await c.next(REPLY_TIMEOUT_MS).catch((err: Error) => {
      throw err.message === "no reply in time" ? new Stuck(err.message) : err;
    });
    out.push(m);
    if (m.type === step.until || m.type === "Z") break;
  }
  return out;
}

/** The single boolean of cleanSessionSql's DataRow (int16 count, int32 length, 't' or 'f'). */
function cleanOf(replies: Reply[]): boolean {
  const row = replies.find((m) => m.type === "D");
  return row !== undefined && row.body.toString("utf8", 6) === "t";
}

function totalKills(f: Figures): number {
  return KILL_MODES.reduce((sum, m) => sum + f.kills[m], 0);
}

function countError(f: Figures, err: unknown): void {
  const e = err as Error & { code?: string };
  const key = e.code ?? e.message.replace(/\d+/g, "N");
  f.errors.set(key, (f.errors.get(key) ?? 0) + 1);
}

async function runChaos(url: string, observer: pg.Client, seed: number, baseline: boolean): Promise<Figures> {
  const cleanSql = cleanSessionSql(baseline);
  const f: Figures = {
    kills: { after: 0, inflight: 0, half: 0, pipelined: 0 },
    lostVictims: 0,
    terminations: 0,
    honestOk: 0,
    honestFailed: 0,
    freshChecks: 0,
    violations: [],
    stuck: 0,
    errors: new Map(),
  };
  let running = true;
  let nextVictim = 0;

  const victim = async (n: number): Promise<void> => {
    const r = seededRandom(seed + n);
    let c: RawClient | null = null;
    try {
      c = await RawClient.connect(url);
      f.freshChecks++;
      if (!cleanOf(await runStep(c, { msg: query(cleanSql), until: "Z" }))) {
        f.violations.push(`victim ${n} found another client's state in its new session`);
      }
      const steps = victimPlan(r, n, baseline);
      const at = r.int(0, steps.length - 1);
      const mode = r.pick(KILL_MODES);
      for (const step of steps.slice(0, at)) await runStep(c, step);
      const step = steps[at]!;
      if (mode === "after") await runStep(c, step);
      else if (mode === "inflight") {
        c.send(step.msg);
        await sleep(r.int(0, 20));
      } else if (mode === "half") c.send(step.msg.subarray(0, r.int(1, step.msg.length - 1)));
      else {
        c.send(...steps.slice(at).map((s) => s.msg));
        await sleep(r.int(0, 10));
      }
      c.destroy();
      f.kills[mode]++;
    } catch (err) {
      c?.destroy();
      if (err instanceof Stuck) f.stuck++;
      f.lostVictims++;
      countError(f, err);
    }
  };

  const honest = async (id: number): Promise<void> => {
    const r = seededRandom(seed ^ (0x4f4e4553 + id));
    for (let gen = 0; running; gen++) {
      const name = `honest-${id}-${gen}`;
      let c: pg.Client | null = null;
      try {
        c = await connect(url, { query_timeout: REPLY_TIMEOUT_MS });
        f.freshChecks++;
        if (!(await c.query(cleanSql)).rows[0].clean) {
          f.violations.push(`${name} found another client's state in its new session`);
        }
        await c.query(`SET app.client = '${name}'`);
        await c.query(`CREATE TEMP TABLE honest_${id} (owner text)`);
        await c.query(`INSERT INTO honest_${id} VALUES ($1)`, [name]);
        while (running) {
          await c.query("BEGIN");
          const seen = await c.query(
            `SELECT current_setting('app.client') AS setting,
               array(SELECT relname::text FROM pg_class WHERE relnamespace = pg_my_temp_schema() ORDER BY 1) AS temps,
               (SELECT string_agg(owner, ',') FROM honest_${id}) AS owner`,
          );
          const { setting, temps, owner } = seen.rows[0];
          if (setting !== name || owner !== name || temps.join() !== `honest_${id}`) {
            f.violations.push(`${name} saw setting ${setting}, temp tables [${temps}], owner ${owner}`);
          }
          await c.query("UPDATE chaos SET n = n + 1 WHERE id = $1", [r.int(1, ROWS)]);
          await c.query("COMMIT");
          f.honestOk++;
          await sleep(r.int(0, 20));
        }
      } catch (err) {
        // its server was terminated (or its connection refused): a new client, a new session
        f.honestFailed++;
        if ((err as Error).message.includes("timeout")) f.stuck++;
        countError(f, err);
      } finally {
        await c?.end().catch(() => undefined);
      }
    }
  };

  const terminator = async (): Promise<void> => {
    const r = seededRandom(seed ^ 0x7e4d1a7e);
    while (running) {
      await sleep(r.int(50, 200));
      const { rows } = await observer.query(
        `SELECT pid FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state IS NOT NULL ORDER BY pid`,
      );
      if (rows.length === 0) continue;
      const killed = await observer.query("SELECT pg_terminate_backend($1) AS ok", [r.pick(rows).pid]);
      if (killed.rows[0].ok) f.terminations++;
    }
  };

  const background = [...Array.from({ length: HONEST_CLIENTS }, (_, id) => honest(id)), terminator()];
  await Promise.all(
    Array.from({ length: VICTIM_WORKERS }, async () => {
      while (totalKills(f) < KILLS && f.stuck === 0) await victim(nextVictim++);
    }),
  );
  running = false;
  await Promise.all(background);
  return f;
}

describe("chaos under load", () => {
  let server: PrivatePostgres;
  let observer: pg.Client;
  const seed = seedFrom("CHAOS_SEED");

  beforeAll(async () => {
    server = await startPrivatePostgres();
    observer = await connect(server.url("postgres"));
    await observer.query("CREATE TABLE chaos (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    await observer.query("INSERT INTO chaos (id) SELECT generate_series(1, $1::int)", [ROWS]);
  });
  afterAll(async () => {
    await observer?.end();
    await server?.stop();
    files.remove();
  });

  const files = new UserlistDir();
  /** The server's `postgres` database, with connect_query (beside the userlists: one folder to remove). */
  const baselineIni = (): string => {
    const ini = path.join(path.dirname(files.write([])), "pgbouncer.ini");
    const connectQuery = BASELINE_QUERY.replaceAll("'", "''");
    fs.writeFileSync(
      ini,
      `[databases]\npostgres = host=127.0.0.1 port=${server.port} dbname=postgres connect_query='${connectQuery}'\n[pgbouncer]\n`,
    );
    return ini;
  };

  it.each([
    ["transaction", ""],
    ["session", ""],
    ["transaction", " with connect_query"],
  ])(
    "%s pooling%s: clients killed mid-transaction and servers terminated leave nothing behind",
    async (mode, variant) => {
      const baseline = variant !== "";
      const p = await startTestPooler(
        {
          DATABASE_URL: baseline ? "" : server.url("postgres"),
          POOL_MODE: mode,
          DEFAULT_POOL_SIZE: String(POOL_SIZE),
          LOG_CONNECTIONS: "0",
          LOG_DISCONNECTIONS: "0",
          LOG_POOLER_ERRORS: "0",
          ...(baseline ? { AUTH_FILE: files.write([["postgres", "postgres"]]) } : {}),
        },
        baseline ? baselineIni() : undefined,
      );
      try {
        const started = Date.now();
        const f = await runChaos(p.url("postgres"), observer, seed, baseline);

        // The pooler rolls back and resets servers asynchronously: give it a bounded moment.
        const pool = [...p.pooler.pools.values()][0]!;
        await waitFor(
          () => p.pooler.clients.size === 0 && pool.active.size === 0 && pool.used.size === 0,
          "the pooler to take back every server",
          15_000,
        );
        let left = { busy: -1, locks: -1, temp_tables: -1 };
        await waitFor(
          async () => {
            left = (await observer.query(LEFTOVERS_SQL)).rows[0];
            return left.busy + left.locks + left.temp_tables === 0;
          },
          "PostgreSQL to show no leftovers",
          15_000,
        ).catch(() => undefined); // the exact counts are asserted below
        await observer.query("BEGIN");
        const lockable = await observer.query(
          "SELECT count(*)::int AS n FROM (SELECT id FROM chaos FOR UPDATE NOWAIT) s",
        );
        await observer.query("ROLLBACK");

        // Every pooled server, each held by a fresh client at once, is a clean session.
        const fresh = await Promise.all(
          Array.from({ length: pool.idle.length }, () => connect(p.url("postgres"))),
        );
        const dirty: number[] = [];
        for (const c of fresh) await c.query("BEGIN");
        for (const [i, c] of fresh.entries())
          if (!(await c.query(cleanSessionSql(baseline))).rows[0].clean) dirty.push(i);
        await Promise.all(fresh.map((c) => c.end()));

        const kills = KILL_MODES.map((m) => `${m} ${f.kills[m]}`).join(", ");
        console.log(
          `chaos ${mode}${variant}: seed ${seed}, ${totalKills(f)} kills (${kills}), ` +
            `${f.lostVictims} victims lost to terminations, ${f.terminations} backends terminated, ` +
            `honest transactions ${f.honestOk} ok / ${f.honestFailed} failed, ${f.freshChecks} fresh-session checks, ` +
            `${f.violations.length} violations, ${f.stuck} stuck, leftovers: ${left.busy} busy backends, ` +
            `${left.locks} locks, ${left.temp_tables} temp tables, ${dirty.length} dirty pooled servers of ` +
            `${fresh.length}, ${((Date.now() - started) / 1000).toFixed(1)} s; errors ${JSON.stringify([...f.errors])}`,
        );
        expect(f.violations).toEqual([]);
        expect(f.stuck).toBe(0);
        expect(totalKills(f)).toBeGreaterThanOrEqual(KILLS);
        for (const m of KILL_MODES) expect(f.kills[m]).toBeGreaterThan(0);
        expect(f.terminations).toBeGreaterThan(0);
        expect(f.honestOk).toBeGreaterThan(0);
        expect(left).toEqual({ busy: 0, locks: 0, temp_tables: 0 });
        expect(lockable.rows[0].n).toBe(ROWS);
        expect(dirty).toEqual([]);
      } finally {
        await p.stop();
      }
    },
    120_000,
  );
});

const fatal = {
  severity: "FATAL",
  code: "57P01",
  message: "terminating connection due to administrator command",
} as const;

describe("a backend terminated right after its login", () => {
  it("is not handed to the client waiting for it: that client gets the next server", async () => {
    // its second connection is terminated right behind the login's ReadyForQuery, in the same
    // packet, as pg_terminate_backend can do
    const fake = await startFakePostgres({
      params: { server_version: "13.0", application_name: "" },
      endAfterLogin: (n) => (n === 1 ? errorResponse(fatal) : null),
    });
    const p = await startTestPooler({
      DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${fake.port}/app`,
    });
    const [holder, waiter] = [await connect(p.url()), await connect(p.url())];
    try {
      // the first server is busy: the waiter's query needs a new one, whose login ends in a FATAL
      await holder.query("BEGIN");
      expect((await waiter.query("SELECT 1")).rowCount).toBe(0);
    } finally {
      await Promise.all([holder.end(), waiter.end()]);
      await p.stop();
      fake.close();
    }
  });
});

/**
 * A pooler on a fake server that ends a backend with a FATAL where `endOnSet` says, as the pooler's
 * SET of a client's application_name reaches it (n counts the backends from 0).
 */
async function withFakeEndingOnSet(
  endOnSet: (n: number) => boolean,
  env: Record<string, string>,
  use: (p: TestPooler, logins: () => number) => Promise<void>,
): Promise<void> {
  const fake = await startFakePostgres({
    params: { server_version: "13.0", application_name: "" },
    endOnQuery: (sql, n) => (sql.startsWith("SET") && endOnSet(n) ? errorResponse(fatal) : null),
  });
  const p = await startTestPooler({
    DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${fake.port}/app`,
    ...env,
  });
  try {
    await use(p, () => fake.logins());
  } finally {
    await p.stop();
    fake.close();
  }
}

describe("a backend terminated while the pooler sets a client's parameters on it", () => {
  it("has had nothing of the client's: the client gets the next server, no error", () =>
    // the first server dies (a shutdown's FATAL) as the SET of the client's application_name
    // reaches it, before any query of the client's
    withFakeEndingOnSet(
      (n) => n === 0,
      {},
      async (p, logins) => {
        const c = await connect(p.url(), { application_name: "mine" });
        expect((await c.query("SELECT 1")).rowCount).toBe(0);
        await c.end();
        expect(logins()).toBe(2);
      },
    ));
});

describe("backends that all die as the pooler sets a client's parameters on them", () => {
  it(
    "are no endless wait: query_wait_timeout counts from the first, not from each new server",
    () =>
      withFakeEndingOnSet(
        () => true,
        { QUERY_WAIT_TIMEOUT: "1" },
        async (p) => {
          const c = await connect(p.url(), { application_name: "mine" });
          c.on("error", () => undefined);
          const err = await errorOf(c.query("SELECT 1"));
          expect(err.message).toMatch(/query_wait_timeout/);
        },
      ),
    10_000,
  );
});
