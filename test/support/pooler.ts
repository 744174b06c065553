// Starts our pooler in the test process, in front of the test PostgreSQL. Settings are given as
// the environment variables a user would set (the edoburu names), so tests exercise that path too.
import { Writable } from "node:stream";
import type pg from "pg";
import { inject } from "vitest";
import { loadConfig } from "../../pooler/config/index.ts";
import { createLogger } from "../../pooler/log.ts";
import { Pooler } from "../../pooler/pooler.ts";
import { connect } from "./clients.ts";

export interface TestPooler {
  pooler: Pooler;
  port: number;
  /** postgresql://postgres:postgres@127.0.0.1:<pooler port>/<db> */
  url(db?: string): string;
  /** The same for another user (the password URL-encoded). */
  urlAs(user: string, password: string, db?: string): string;
  /** Log lines the pooler wrote (JSON objects). */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** `iniPath`: a pgbouncer.ini to read as well, as `node dist/pooler/main.js pgbouncer.ini` does. */
export async function startTestPooler(
  env: Record<string, string> = {},
  iniPath?: string,
): Promise<TestPooler> {
  const fullEnv = { DATABASE_URL: inject("pgAppUrl"), LISTEN_PORT: "0", POOL_MODE: "transaction", ...env };
  const { config, warnings } = loadConfig({ env: fullEnv, iniPath });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger(config.verbose, sink);
  // as main.ts logs them
  for (const w of warnings) log.warn(w);
  const pooler = await Pooler.start(config, log);
  // RELOAD from the console re-reads this environment, not the test process's own
  pooler.configLoader = (running) => loadConfig({ env: fullEnv, iniPath, running });
  const port = pooler.port;
  return {
    pooler,
    port,
    url: (db = "app") => `postgresql://postgres:postgres@127.0.0.1:${port}/${db}`,
    urlAs: (user, password, db = "app") =>
      `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`,
    logs,
    stop: () => pooler.shutdown(0),
  };
}

/** Runs `fn` against a pooler of its own (env as for startTestPooler), stopped afterwards whatever happens. */
export async function withTestPooler<T>(
  env: Record<string, string>,
  fn: (p: TestPooler) => Promise<T>,
): Promise<T> {
  const p = await startTestPooler(env);
  try {
    return await fn(p);
  } finally {
    await p.stop();
  }
}

/**
 * Pinned clients as the admin console reports them (SHOW POOLS' cl_pinned) once `c`'s last statement
 * has been looked at: the pooler probes the session after the reply went out, and holds the
 * client's next query until it has decided.
 */
export async function pinnedAfter(p: TestPooler, c: pg.Client): Promise<number> {
  await c.query("SELECT 1");
  const admin = await connect(p.url("pgbouncer"));
  try {
    const { rows } = await admin.query<{ database: string; cl_pinned: number }>("SHOW POOLS");
    return rows.find((r) => r.database === "app")!.cl_pinned;
  } finally {
    await admin.end();
  }
}
