// The protocol fuzzer (issue 7): mutated startup packets, md5 / SCRAM exchanges and post-login
// framing, many connections at a time against one pooler with short timeouts, while a healthy
// client runs beside them. CI runs a fixed seed for a few seconds; `npm run fuzz` runs longer with
// a random seed (FUZZ_SEED, FUZZ_SECONDS; FUZZ_CASE replays one case), printing the seed.
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { UserlistDir, createLoginRole, dropRole } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";
import type { FuzzLogins } from "./cases.ts";
import { runFuzz, summary } from "./harness.ts";
import { envNumber, seedFrom } from "./rng.ts";

const FIXED_SEED = 20261125;
const seed = seedFrom(process.env.FUZZ_SEED, FIXED_SEED);
const seconds = envNumber("FUZZ_SECONDS", 12);
const only = process.env.FUZZ_CASE ? envNumber("FUZZ_CASE", 0) : undefined;
/** The longest timeout below (query_wait_timeout, query_timeout), a janitor tick, and room for a busy machine. */
const CLOSE_WITHIN_MS = 3000 + 333 + 5000;

const SCRAM_ROLE = "pooler_fuzz_scram";
const logins: FuzzLogins = {
  database: "postgres",
  md5: { user: "postgres", password: "postgres" },
  scram: { user: SCRAM_ROLE, password: "fuzz-pw" },
};

let p: TestPooler;
let userlists: UserlistDir;

beforeAll(async () => {
  const secret = await createLoginRole(
    inject("pgAppUrl"),
    SCRAM_ROLE,
    logins.scram.password,
    "scram-sha-256",
  );
  // md5 for the plain-secret user, SCRAM (pass-through) for the one with PostgreSQL's SCRAM secret
  userlists = new UserlistDir();
  const userlist = userlists.write([
    [logins.md5.user, logins.md5.password],
    [SCRAM_ROLE, secret],
  ]);
  p = await startTestPooler({
    // any database name: the cases use their own pool ("postgres"), the healthy client "app"
    DATABASE_URL: "",
    DB_HOST: "127.0.0.1",
    DB_PORT: String(inject("pgPort")),
    DB_USER: "postgres",
    DB_PASSWORD: "postgres",
    AUTH_TYPE: "md5",
    AUTH_FILE: userlist,
    CLIENT_LOGIN_TIMEOUT: "2",
    CLIENT_IDLE_TIMEOUT: "2",
    IDLE_TRANSACTION_TIMEOUT: "2",
    QUERY_TIMEOUT: "3",
    QUERY_WAIT_TIMEOUT: "3",
    DEFAULT_POOL_SIZE: "8",
    MAX_CLIENT_CONN: "200",
    LOG_CONNECTIONS: "0",
    LOG_DISCONNECTIONS: "0",
  });
});

afterAll(async () => {
  await p?.stop();
  userlists?.remove();
  await dropRole(inject("pgAppUrl"), SCRAM_ROLE);
});

it(
  "answers every mutated startup, auth exchange and framing with an allowed FATAL or a close, in time, and keeps serving",
  async () => {
    console.log(
      `fuzz: seed ${seed} (replay with FUZZ_SEED=${seed}${only === undefined ? "" : ` FUZZ_CASE=${only}`})`,
    );
    const report = await runFuzz({
      port: p.port,
      logins,
      healthyUrl: p.url("app"),
      seed,
      seconds,
      concurrency: 32,
      closeWithinMs: CLOSE_WITHIN_MS,
      only,
    });
    console.log(summary(report));
    for (const f of report.failures.slice(0, 20)) {
      console.log(
        `  case ${f.caseNo} (${f.target}, FUZZ_SEED=${seed} FUZZ_CASE=${f.caseNo}): ${f.problem}; sent ${f.label}; got ${f.got}`,
      );
    }
    if (only !== undefined) for (const l of p.logs) console.log(JSON.stringify(l));
    expect(report.failures).toEqual([]);
    expect(report.healthyErrors).toEqual([]);
    // a replayed case is over before the healthy client's first query
    if (only === undefined) expect(report.healthyQueries).toBeGreaterThan(0);
    // an internal failure is logged at level error (50) or above, never just a client's bad input
    expect(p.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
    // nothing left behind: every fuzz client is gone and no server is stuck with one
    await waitFor(() => p.pooler.clients.size === 0, "every fuzz client to be gone");
    for (const pool of p.pooler.pools.values()) expect(pool.active.size).toBe(0);
  },
  seconds * 1000 + 60_000,
);
