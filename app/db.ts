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

export function connectDatabase(
  config: Pick<DatabaseConfig, "databaseUrl" | "databaseSchema" | "dbPoolMax">,
  onPoolError: (err: Error) => void = () => {},
): Database {
  const prisma = new PrismaClient({
    adapter: new PrismaPg(
      {
        connectionString: config.databaseUrl,
        max: config.dbPoolMax,
        connectionTimeoutMillis: CONNECTION_WAIT_MS,
      },
      { schema: config.databaseSchema },
    ),
  });
  const sessionPool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: SESSION_POOL_MAX,
    connectionTimeoutMillis: CONNECTION_WAIT_MS,
  });
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
