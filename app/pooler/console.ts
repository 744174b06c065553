// One reading of the pooler's admin console (PgBouncer's SHOW commands, simple query protocol, one
// command per query as the console requires): what each pool holds now, its limits, and the
// running totals that rates are computed from.
import type pg from "pg";

/** The virtual database of the console itself: its "pool" holds the console sessions, ours included. */
const CONSOLE_DB = "pgbouncer";

export interface PoolReading {
  database: string;
  user: string;
  /** SHOW POOLS: clients linked to a server or idle; clients queued for one */
  cl_active: number;
  cl_waiting: number;
  /** SHOW POOLS: servers linked to a client; servers free for the next one */
  sv_active: number;
  sv_idle: number;
  /** SHOW POOLS maxwait + maxwait_us: how long the oldest queued client has waited, in ms */
  maxwait_ms: number;
  /** the pool's size: the user's override (SHOW USERS), else its database's (SHOW DATABASES); 0 = no limit */
  pool_size: number;
  /** SHOW DATABASES max_connections (max_db_connections), shared by the database's pools; 0 = no limit */
  max_connections: number;
}

/** SHOW STATS totals since the pooler started; PgBouncer counts them per database, not per pool. */
export interface DatabaseTotals {
  xacts: number;
  /** clients handed a server, and the microseconds they waited for it in all */
  assignments: number;
  waitUs: number;
}

export interface ConsoleReading {
  pools: PoolReading[];
  totals: Map<string, DatabaseTotals>;
}

type Row = Record<string, unknown>;

async function show(client: pg.Client, what: string): Promise<Row[]> {
  return (await client.query<Row>(`SHOW ${what}`)).rows;
}

/** int4 columns arrive as numbers, SHOW STATS' numeric ones as strings. */
function num(row: Row, column: string): number {
  const value = Number(row[column]);
  if (!Number.isFinite(value)) throw new Error(`the pooler's console sent ${column}=${String(row[column])}`);
  return value;
}

function text(row: Row, column: string): string {
  return String(row[column] ?? "");
}

export async function readConsole(client: pg.Client): Promise<ConsoleReading> {
  const pools = await show(client, "POOLS");
  const stats = await show(client, "STATS");
  const databases = await show(client, "DATABASES");
  const users = await show(client, "USERS");

  const dbLimits = new Map(databases.map((d) => [text(d, "name"), d]));
  // SHOW USERS prints a user's own pool_size padded ("       30"), or "" when it has none.
  const userPoolSize = new Map(
    users
      .filter((u) => text(u, "pool_size").trim() !== "")
      .map((u) => [text(u, "name"), num(u, "pool_size")]),
  );

  return {
    pools: pools
      .filter((p) => text(p, "database") !== CONSOLE_DB)
      .map((p): PoolReading => {
        const database = text(p, "database");
        const user = text(p, "user");
        const db = dbLimits.get(database);
        return {
          database,
          user,
          cl_active: num(p, "cl_active"),
          cl_waiting: num(p, "cl_waiting"),
          sv_active: num(p, "sv_active"),
          // "used": idle past server_check_delay, checked before the next client gets it (PgBouncer's list)
          sv_idle: num(p, "sv_idle") + num(p, "sv_used"),
          maxwait_ms: num(p, "maxwait") * 1000 + num(p, "maxwait_us") / 1000,
          pool_size: userPoolSize.get(user) ?? (db ? num(db, "pool_size") : 0),
          max_connections: db ? num(db, "max_connections") : 0,
        };
      }),
    totals: new Map(
      stats.map((s) => [
        text(s, "database"),
        {
          xacts: num(s, "total_xact_count"),
          assignments: num(s, "total_server_assignment_count"),
          waitUs: num(s, "total_wait_time"),
        },
      ]),
    ),
  };
}
