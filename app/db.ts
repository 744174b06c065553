// The app's two connections to PostgreSQL, both through DATABASE_URL (the pooler): Prisma for the
// data, and a small pg pool for the session store. Neither keeps session state on the server
// connection (adapter-pg sends only unnamed statements), which transaction pooling requires.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client.ts";
import type { DatabaseConfig } from "./config.ts";
import { noteQueryTimeout } from "./db-errors.ts";

export interface Database {
  prisma: PrismaClient;
  /** for connect-pg-simple */
  sessionPool: pg.Pool;
  close(): Promise<void>;
}

/** The session store runs one query per request at most; a couple of connections are plenty. */
const SESSION_POOL_MAX = 2;

/**
 * How long a request waits for a connection of the app's pools (a free one, or a new one's login)
 * before it is a 503: Prisma's own pool gave up after 10 s (pool_timeout, P2024), pg's waits
 * forever, so a paused or frozen pooler would queue every request for as long as it lasts.
 */
export const CONNECTION_WAIT_MS = 10_000;

/**
 * Idle time before TCP keepalive probes a connection to the pooler: a host that vanished without a
 * FIN (a crash, a cut link) is then found dead in this plus libuv's 10 probes a second apart, where
 * the system's default would wait two hours before the first probe.
 */
export const KEEPALIVE_DELAY_MS = 10_000;

/** What pg keeps to itself: the query a client has sent and not yet had all answers for. */
interface BusyClient {
  _activeQuery?: unknown;
}

/**
 * Closes a client as soon as one of its queries times out. Its connection is still busy with the
 * query: the next statement (Prisma's ROLLBACK of the transaction the query was in) would queue
 * behind it and wait out a second timeout. Closed, the server rolls that transaction back itself.
 * pg's pool.query() (the session store's) closes it too, through its release with the error.
 * The timeout is marked when the statement only reads (noteQueryTimeout): then nothing was saved.
 */
function endOnTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  Object.assign(client, {
    query(...args: unknown[]) {
      const config = args[0] as string | { text?: unknown };
      const statement = String(typeof config === "string" ? config : config?.text);
      const callback = args.at(-1);
      // pool.query()'s (the session store's, Prisma's outside a transaction): the pool closes the client
      if (typeof callback === "function")
        args[args.length - 1] = (err: unknown, res: unknown) => {
          noteQueryTimeout(err, statement);
          return callback(err, res) as unknown;
        };
      const result = query(...args);
      if (result instanceof Promise)
        result.catch((err: unknown) => {
          if (noteQueryTimeout(err, statement)) void client.end();
        });
      return result;
    },
  });
}

/**
 * A pool whose queries fail after `queryTimeout` seconds, their connections closed (endOnTimeout).
 * A client may also be released while still busy with a query that has not timed out: Prisma's
 * own transaction timeout (5 s) gives up on a statement still waiting for a lock. Handed to another
 * request, it would run that request's statements inside whatever the abandoned one left open, and
 * see the abandoned statement through once the lock goes: the release closes it here.
 */
function boundedPool(databaseUrl: string, max: number, queryTimeout: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: CONNECTION_WAIT_MS,
    query_timeout: queryTimeout * 1000 || undefined,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  pool.on("connect", endOnTimeout);
  pool.on("release", (err, client) => {
    // ended before the pool looks at it, so the pool drops it instead of keeping it idle
    if (!err && (client as unknown as BusyClient)._activeQuery) void client.end();
  });
  return pool;
}

export function connectDatabase(
  config: Pick<DatabaseConfig, "databaseUrl" | "databaseSchema" | "dbPoolMax" | "dbQueryTimeout">,
  onPoolError: (err: Error) => void = () => {},
): Database {
  const prisma = new PrismaClient({
    adapter: new PrismaPg(boundedPool(config.databaseUrl, config.dbPoolMax, config.dbQueryTimeout), {
      schema: config.databaseSchema,
      disposeExternalPool: true,
    }),
  });
  const sessionPool = boundedPool(config.databaseUrl, SESSION_POOL_MAX, config.dbQueryTimeout);
  // An idle connection dropped by the pooler or PostgreSQL must not crash the process.
  sessionPool.on("error", onPoolError);
  return {
    prisma,
    sessionPool,
    async close() {
      await prisma.$disconnect();
      await sessionPool.end();
    },
  };
}
