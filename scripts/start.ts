// npm start: the tutorial's stack (browser → app → pooler → PostgreSQL 13) on one machine, no Docker.
//
// Without DATABASE_URL it runs everything itself: an embedded PostgreSQL 13 (data kept in .data/postgres,
// or $DATA_DIR/postgres), the migrations, our pooler in transaction mode, then the app. With DATABASE_URL
// (your own pooler and database) it only applies the migrations, if POSTGRES_DATABASE_URL is set, and
// runs the app. Ctrl-C stops the app, then the pooler, then PostgreSQL.
import path from "node:path";
import { deployMigrations } from "./lib/deploy.ts";
import { DataDirInUse, dataDirHolder, startEmbeddedPostgres } from "./lib/embedded-postgres.ts";
import { makeDir } from "./lib/make-dir.ts";
import { createDatabase } from "./lib/migrations.ts";
import { startNodeChild, Supervisor, type Child } from "./lib/processes.ts";
import { errorMessage, projectRoot } from "./lib/project.ts";
import { answersHttp, answersSelect1, isPortFree, waitUntil } from "./lib/wait.ts";
import { POOLER_NODE_FLAGS } from "./lib/pooler-node-flags.ts";

const log = (line: string) => console.log(`[start] ${line}`);
const logMigration = (line: string) => console.log(`[migrate] ${line}`);
const supervisor = new Supervisor(log);

/** `zeroIsOff`: 0 is allowed, for a port the service can do without (the pooler's METRICS_PORT). */
function envPort(variable: string, fallback: number, { zeroIsOff = false } = {}): number {
  const raw = process.env[variable];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < (zeroIsOff ? 0 : 1) || port > 65535)
    throw new Error(`${variable}=${raw} is not a TCP port`);
  return port;
}

async function assertPortFree(port: number, host: string, variable: string, what: string): Promise<void> {
  if (!(await isPortFree(port, host))) {
    throw new Error(
      `port ${port} (${what}) is already in use on ${host}: stop what uses it or choose another with ${variable}=...`,
    );
  }
}

/** Run from dist/ (plain node) we start the compiled entry points, else the TypeScript ones via tsx. */
const compiled = import.meta.url.endsWith(".js");

function startService(name: string, entry: "pooler/main" | "app/server", env: NodeJS.ProcessEnv): Child {
  const file = compiled
    ? path.join(projectRoot, "dist", `${entry}.js`)
    : path.join(projectRoot, `${entry}.ts`);
  const nodeFlags = entry === "pooler/main" ? POOLER_NODE_FLAGS : [];
  const child = startNodeChild(name, file, { cwd: projectRoot, env, nodeFlags });
  supervisor.watch(child);
  return child;
}

/** The app listens on HOST (all interfaces by default); we check it over loopback unless told otherwise. */
const appHost = process.env.HOST ?? "0.0.0.0";

async function startApp(port: number, env: NodeJS.ProcessEnv): Promise<void> {
  const app = startService("app", "app/server", { ...process.env, ...env, PORT: String(port) });
  const host = appHost === "0.0.0.0" || appHost === "::" ? "127.0.0.1" : appHost;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;
  await waitUntil(`the app answers at ${url}`, () => answersHttp(url), { child: app });
}

function printBox(lines: string[]): void {
  const width = Math.max(...lines.map((line) => line.length));
  const bar = "─".repeat(width + 2);
  console.log([`┌${bar}┐`, ...lines.map((line) => `│ ${line.padEnd(width)} │`), `└${bar}┘`].join("\n"));
}

async function runEverything(): Promise<void> {
  const ports = {
    postgres: envPort("PGPORT", 5433),
    pooler: envPort("POOLER_PORT", 6432),
    app: envPort("PORT", 8000),
  };
  const dataDir = path.join(
    path.resolve(process.env.DATA_DIR ?? path.join(projectRoot, ".data")),
    "postgres",
  );
  const metricsPort = envPort("METRICS_PORT", 9127, { zeroIsOff: true });
  // Check everything before starting anything: a second `npm start` must not touch the first one's
  // PostgreSQL. A postmaster orphaned by a hard-killed run holds the port: startEmbeddedPostgres stops it.
  const holder = dataDirHolder(dataDir);
  if (holder.kind === "owned") throw new DataDirInUse(dataDir, holder.pid, holder.owner);
  await assertPortFree(ports.app, appHost, "PORT", "the app");
  await assertPortFree(ports.pooler, "127.0.0.1", "POOLER_PORT", "the pooler");
  if (metricsPort !== 0)
    await assertPortFree(metricsPort, "127.0.0.1", "METRICS_PORT", "the pooler's metrics");
  if (holder.kind === "none") await assertPortFree(ports.postgres, "127.0.0.1", "PGPORT", "PostgreSQL");

  log(`starting PostgreSQL 13 on 127.0.0.1:${ports.postgres} (data in ${dataDir})`);
  makeDir(path.dirname(dataDir));
  const postgres = await startEmbeddedPostgres({
    dataDir,
    port: ports.postgres,
    onLog: (chunk) => {
      for (const line of chunk.split("\n")) if (line) console.error(`[postgres] ${line}`);
    },
  });
  supervisor.add("postgres", () => postgres.stop());
  if (await createDatabase(postgres.url(), "app")) logMigration('created database "app"');
  await deployMigrations(postgres.url("app"), logMigration);

  const pooler = startService("pooler", "pooler/main", {
    LISTEN_ADDR: "127.0.0.1",
    POOL_MODE: "transaction",
    DEFAULT_POOL_SIZE: "20",
    MAX_DB_CONNECTIONS: "50",
    // room for an app pool larger than the server pool (DB_POOL_MAX=100) and `npm run load --db-clients`
    MAX_CLIENT_CONN: "1000",
    ADMIN_USERS: "postgres",
    ...process.env, // your own pooler settings win, e.g. POOL_MODE=session npm start
    // no database in the URL: any database name is served (PgBouncer's "*"), each with its own pool
    DATABASE_URL: postgres.url(""),
    LISTEN_PORT: String(ports.pooler),
    METRICS_PORT: String(metricsPort),
  });
  const login = `${postgres.user}:${encodeURIComponent(postgres.password)}`;
  const poolerUrl = `postgresql://${login}@127.0.0.1:${ports.pooler}/app`;
  await waitUntil(`the pooler answers SELECT 1 on port ${ports.pooler}`, () => answersSelect1(poolerUrl), {
    child: pooler,
  });

  await startApp(ports.app, {
    DATABASE_URL: poolerUrl,
    ...(metricsPort !== 0 && { POOLER_METRICS_URL: `http://127.0.0.1:${metricsPort}/metrics` }),
  });
  printBox([
    `try-ts-pooler: browser → app :${ports.app} → pooler :${ports.pooler} → PostgreSQL 13 :${ports.postgres}`,
    "",
    `Posts   http://localhost:${ports.app}`,
    `Admin   http://localhost:${ports.app}/admin/`,
    "",
    "Create the first superuser (in another terminal):",
    `  DATABASE_URL=${poolerUrl} npm run createsuperuser`,
    "",
    `SQL through the pooler (password ${postgres.password}):`,
    `  psql -h 127.0.0.1 -p ${ports.pooler} -U ${postgres.user} app`,
    `The pool, live: http://localhost:${ports.app}/admin/pooler/`,
    `  make it move: npm run load -- --url http://localhost:${ports.app}/`,
    "The pooler's admin console (SHOW POOLS; SHOW STATS; SHOW HELP;):",
    `  psql -h 127.0.0.1 -p ${ports.pooler} -U ${postgres.user} pgbouncer`,
    "PostgreSQL itself:",
    `  psql -h 127.0.0.1 -p ${ports.postgres} -U ${postgres.user} app`,
    "",
    "Press Ctrl-C to stop the app, then the pooler, then PostgreSQL.",
  ]);
}

async function runAppOnly(): Promise<void> {
  const port = envPort("PORT", 8000);
  await assertPortFree(port, appHost, "PORT", "the app");
  const directUrl = process.env.DIRECT_DATABASE_URL ?? process.env.POSTGRES_DATABASE_URL;
  if (directUrl) await deployMigrations(directUrl, logMigration);
  else
    log(
      "POSTGRES_DATABASE_URL is not set: not applying migrations (npm run migrate does, given a direct URL)",
    );
  await startApp(port, {});
  printBox([
    "try-ts-pooler: the app, with your own pooler and PostgreSQL (DATABASE_URL)",
    "",
    `Posts   http://localhost:${port}`,
    `Admin   http://localhost:${port}/admin/`,
    "",
    "Create the first superuser (in another terminal, same DATABASE_URL):",
    "  npm run createsuperuser",
    "",
    "Press Ctrl-C to stop the app.",
  ]);
}

try {
  if (process.env.DATABASE_URL) await runAppOnly();
  else await runEverything();
} catch (err) {
  await supervisor.shutdown(1, `error: ${errorMessage(err)}`); // a no-op if already shutting down
}
