// The app's two connections to PostgreSQL, both through DATABASE_URL (the pooler): Prisma for the
// data, and a small pg pool for the session store. Neither keeps session state on the server
// connection (adapter-pg sends only unnamed statements), which transaction pooling requires.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client.ts";
import type { DatabaseConfig } from "./config.ts";

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
 * A pool whose queries fail after `queryTimeout` seconds. The connection a timed-out query was sent
 * on is still busy with it, and may later see it through (a lock released, RESUME): handed to
 * another request, it would run that request's statements inside whatever the abandoned one left
 * open, e.g. the transaction whose ROLLBACK timed out behind it. pg's own pool.query() then closes
 * it; for a client checked out (Prisma's transactions) the release closes it here.
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
