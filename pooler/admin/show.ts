// The SHOW commands: PgBouncer 1.25's result sets column for column, names and PostgreSQL types as
// its admin.c and stats.c send them, so pgbouncer_exporter and existing scripts read ours unchanged.
import { showConfigRows, type ShowConfigRow } from "../config/index.ts";
import type { DnsHostRow } from "../dns-cache.ts";
import type { PeerPoolRow } from "../peers.ts";
import type { Pooler } from "../pooler.ts";
import { commandComplete } from "../protocol/messages.ts";
import type { Counters } from "../stats.ts";
import { PGBOUNCER_VERSION } from "../version.ts";
import { cols, notice, resultSet, type Cell, type Column } from "./resultset.ts";
import {
  clientRows,
  databaseRows,
  databaseStats,
  listRows,
  memRows,
  overallStats,
  peerRows,
  poolRows,
  serverRows,
  socketBufferRows,
  stateRows,
  userRows,
  type DatabaseRow,
  type ListRow,
  type MemRow,
  type PeerRow,
  type PoolRow,
  type SocketBufferRow,
  type SocketRow,
  type StateRow,
  type UserRow,
} from "./views.ts";

export type ShowCommand = (pooler: Pooler) => Buffer[];

const DATABASE_COLUMNS = cols<DatabaseRow>({
  name: "text",
  host: "text",
  port: "int4",
  database: "text",
  force_user: "text",
  pool_size: "int4",
  min_pool_size: "int4",
  reserve_pool_size: "int4",
  server_lifetime: "int4",
  pool_mode: "text",
  load_balance_hosts: "text",
  max_connections: "int4",
  current_connections: "int4",
  max_client_connections: "int4",
  current_client_connections: "int4",
  paused: "int4",
  disabled: "int4",
});

const POOL_COLUMNS = cols<PoolRow>({
  database: "text",
  user: "text",
  cl_active: "int4",
  cl_waiting: "int4",
  cl_active_cancel_req: "int4",
  cl_waiting_cancel_req: "int4",
  sv_active: "int4",
  sv_active_cancel: "int4",
  sv_being_canceled: "int4",
  sv_idle: "int4",
  sv_used: "int4",
  sv_tested: "int4",
  sv_login: "int4",
  maxwait: "int4",
  maxwait_us: "int4",
  pool_mode: "text",
  load_balance_hosts: "text",
  cl_pinned: "int4",
});

const SOCKET_COLUMNS = cols<SocketRow>({
  type: "text",
  user: "text",
  database: "text",
  replication: "text",
  state: "text",
  addr: "text",
  port: "int4",
  local_addr: "text",
  local_port: "int4",
  connect_time: "text",
  request_time: "text",
  wait: "int4",
  wait_us: "int4",
  close_needed: "int4",
  ptr: "text",
  link: "text",
  remote_pid: "int4",
  tls: "text",
  application_name: "text",
  prepared_statements: "int4",
  id: "int4",
});

const SOCKET_BUFFER_COLUMNS: Column<SocketBufferRow>[] = [
  ...SOCKET_COLUMNS,
  ...cols<SocketBufferRow>({
    recv_pos: "int4",
    pkt_pos: "int4",
    pkt_remain: "int4",
    send_pos: "int4",
    send_remain: "int4",
    pkt_avail: "int4",
    send_avail: "int4",
  }),
];

const USER_COLUMNS = cols<UserRow>({
  name: "text",
  pool_size: "text",
  reserve_pool_size: "text",
  pool_mode: "text",
  max_user_connections: "int4",
  current_connections: "int4",
  max_user_client_connections: "int4",
  current_client_connections: "int4",
});

const PEER_COLUMNS = cols<PeerRow>({ peer_id: "int4", host: "text", port: "int4", pool_size: "int4" });
const PEER_POOL_COLUMNS = cols<PeerPoolRow>({
  peer_id: "int4",
  cl_active_cancel_req: "int4",
  cl_waiting_cancel_req: "int4",
  sv_active_cancel: "int4",
  sv_login: "int4",
});
const LIST_COLUMNS = cols<ListRow>({ list: "text", items: "int4" });
const STATE_COLUMNS = cols<StateRow>({ key: "text", value: "text" });
const MEM_COLUMNS = cols<MemRow>({
  name: "text",
  size: "int4",
  used: "int4",
  free: "int4",
  memtotal: "int4",
});
const CONFIG_COLUMNS = cols<ShowConfigRow>({
  key: "text",
  value: "text",
  default: "text",
  changeable: "text",
});

// ---- stats ----

/**
 * PgBouncer 1.25's eleven statistics in its column order, named as each SHOW names them. The last
 * three count named prepared statements (prepared.ts): the clients' Parses, the pooler's Parses on
 * servers, and Binds.
 */
const STAT_FIELDS: readonly {
  counter: keyof Counters;
  /** SHOW STATS: the total, then the average. */
  total: string;
  avg: string;
  /** SHOW STATS_TOTALS and STATS_AVERAGES. */
  totalsColumn: string;
  averagesColumn: string;
  /** SHOW TOTALS rows, after "total_" / "avg_". */
  totalsRow: string;
}[] = [
  {
    counter: "serverAssignments",
    total: "total_server_assignment_count",
    avg: "avg_server_assignment_count",
    totalsColumn: "server_assignment_count",
    averagesColumn: "server_assignment_count",
    totalsRow: "server_assignment_count",
  },
  {
    counter: "xactCount",
    total: "total_xact_count",
    avg: "avg_xact_count",
    totalsColumn: "xact_count",
    averagesColumn: "xact_count",
    totalsRow: "xact_count",
  },
  {
    counter: "queryCount",
    total: "total_query_count",
    avg: "avg_query_count",
    totalsColumn: "query_count",
    averagesColumn: "query_count",
    totalsRow: "query_count",
  },
  {
    counter: "bytesReceived",
    total: "total_received",
    avg: "avg_recv",
    totalsColumn: "bytes_received",
    averagesColumn: "bytes_received",
    totalsRow: "client_bytes",
  },
  {
    counter: "bytesSent",
    total: "total_sent",
    avg: "avg_sent",
    totalsColumn: "bytes_sent",
    averagesColumn: "bytes_sent",
    totalsRow: "server_bytes",
  },
  {
    counter: "xactTimeUs",
    total: "total_xact_time",
    avg: "avg_xact_time",
    totalsColumn: "xact_time",
    averagesColumn: "xact_time",
    totalsRow: "xact_time",
  },
  {
    counter: "queryTimeUs",
    total: "total_query_time",
    avg: "avg_query_time",
    totalsColumn: "query_time",
    averagesColumn: "query_time",
    totalsRow: "query_time",
  },
  {
    counter: "waitTimeUs",
    total: "total_wait_time",
    avg: "avg_wait_time",
    totalsColumn: "wait_time",
    averagesColumn: "wait_time",
    totalsRow: "wait_time",
  },
  {
    counter: "clientParseCount",
    total: "total_client_parse_count",
    avg: "avg_client_parse_count",
    totalsColumn: "client_parse_count",
    averagesColumn: "avg_client_parse_count",
    totalsRow: "ps_client_parse_count",
  },
  {
    counter: "serverParseCount",
    total: "total_server_parse_count",
    avg: "avg_server_parse_count",
    totalsColumn: "server_parse_count",
    averagesColumn: "avg_server_parse_count",
    totalsRow: "ps_server_parse_count",
  },
  {
    counter: "bindCount",
    total: "total_bind_count",
    avg: "avg_bind_count",
    totalsColumn: "bind_count",
    averagesColumn: "avg_bind_count",
    totalsRow: "ps_bind_count",
  },
];

type StatsRow = Record<string, Cell>;

type StatField = (typeof STAT_FIELDS)[number];

/** A block of stats columns: every field, named by `name`, read from the totals or the averages. */
interface StatsBlock {
  from: "totals" | "averages";
  name: (f: StatField) => string;
}

/** One row per database, with the blocks' columns in order. */
function statsTable(pooler: Pooler, blocks: StatsBlock[]): Buffer[] {
  const fields = blocks.flatMap((b) =>
    STAT_FIELDS.map((f) => ({ name: b.name(f), from: b.from, counter: f.counter })),
  );
  const columns: Column<StatsRow>[] = [
    { name: "database", type: "text" },
    ...fields.map((f) => ({ name: f.name, type: "numeric" as const })),
  ];
  const rows = databaseStats(pooler).map((db) => {
    const row: StatsRow = { database: db.database };
    for (const f of fields) row[f.name] = db[f.from][f.counter];
    return row;
  });
  return resultSet(columns, rows);
}

function showTotals(pooler: Pooler): Buffer[] {
  const all = overallStats(pooler);
  const rows = [
    ...STAT_FIELDS.map((f) => ({ name: `total_${f.totalsRow}`, value: all.totals[f.counter] })),
    ...STAT_FIELDS.map((f) => ({ name: `avg_${f.totalsRow}`, value: all.averages[f.counter] })),
  ];
  return resultSet(cols<{ name: string; value: number }>({ name: "text", value: "numeric" }), rows);
}

// ---- the rest ----

const HELP = [
  "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
  "SHOW PEERS|PEER_POOLS",
  "SHOW SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE",
  "SHOW DNS_HOSTS|DNS_ZONES",
  "SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
  "SET key = arg",
  "RELOAD",
  "PAUSE [<db>]",
  "RESUME [<db>]",
  "DISABLE <db>",
  "ENABLE <db>",
  "RECONNECT [<db>]",
  "KILL [<db>]",
  "KILL_CLIENT <client_id>",
  "SHUTDOWN",
  "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
  "WAIT_CLOSE [<db>]",
];

function showHelp(): Buffer[] {
  const detail = HELP.map((line) => `\n\t${line}`).join("");
  // PgBouncer sends no result set here, just the notice and the command tag.
  return [notice("Console usage", detail), commandComplete("SHOW")];
}

export const SHOW_COMMANDS: ReadonlyMap<string, ShowCommand> = new Map<string, ShowCommand>([
  ["help", showHelp],
  [
    "version",
    () =>
      resultSet(cols<{ version: string }>({ version: "text" }), [
        { version: `PgBouncer ${PGBOUNCER_VERSION}` },
      ]),
  ],
  ["config", (p) => resultSet(CONFIG_COLUMNS, showConfigRows(p.config))],
  ["databases", (p) => resultSet(DATABASE_COLUMNS, databaseRows(p))],
  ["pools", (p) => resultSet(POOL_COLUMNS, poolRows(p))],
  ["clients", (p) => resultSet(SOCKET_COLUMNS, clientRows(p))],
  ["servers", (p) => resultSet(SOCKET_COLUMNS, serverRows(p))],
  ["sockets", (p) => resultSet(SOCKET_BUFFER_COLUMNS, socketBufferRows(p, false))],
  ["active_sockets", (p) => resultSet(SOCKET_BUFFER_COLUMNS, socketBufferRows(p, true))],
  ["users", (p) => resultSet(USER_COLUMNS, userRows(p))],
  ["lists", (p) => resultSet(LIST_COLUMNS, listRows(p))],
  ["state", (p) => resultSet(STATE_COLUMNS, stateRows(p))],
  ["mem", (p) => resultSet(MEM_COLUMNS, memRows(p))],
  [
    "stats",
    (p) =>
      statsTable(p, [
        { from: "totals", name: (f) => f.total },
        { from: "averages", name: (f) => f.avg },
      ]),
  ],
  ["stats_totals", (p) => statsTable(p, [{ from: "totals", name: (f) => f.totalsColumn }])],
  ["stats_averages", (p) => statsTable(p, [{ from: "averages", name: (f) => f.averagesColumn }])],
  ["totals", showTotals],
  ["peers", (p) => resultSet(PEER_COLUMNS, peerRows(p))],
  ["peer_pools", (p) => resultSet(PEER_POOL_COLUMNS, p.peers.rows())],
  [
    "dns_hosts",
    (p) => resultSet(cols<DnsHostRow>({ hostname: "text", ttl: "int8", addrs: "text" }), p.dns.rows()),
  ],
  [
    // dns_zone_check_period is not implemented (getaddrinfo reads no SOA serials): no zones
    "dns_zones",
    () =>
      resultSet(
        cols<{ zonename: string; serial: number; count: number }>({
          zonename: "text",
          serial: "int8",
          count: "int4",
        }),
        [],
      ),
  ],
]);

/**
 * Server parameters some drivers SHOW or SET on any connection; PgBouncer answers them with fixed
 * values (admin.c fake_param_list) so those drivers work on the console.
 */
export const FAKE_PARAMS: ReadonlyMap<string, string> = new Map([
  ["client_encoding", "UTF-8"],
  ["default_transaction_isolation", "read committed"],
  ["standard_conforming_strings", "on"],
  ["datestyle", "ISO"],
  ["timezone", "GMT"],
  ["extra_float_digits", "2"],
]);

/** The SHOW (or SELECT) of `name`, case-insensitive; undefined for an unknown name. */
export function findShow(name: string): ShowCommand | undefined {
  const key = name.toLowerCase();
  const fake = FAKE_PARAMS.get(key);
  if (fake !== undefined)
    return () => resultSet(cols<Record<string, string>>({ [key]: "text" }), [{ [key]: fake }]);
  return SHOW_COMMANDS.get(key);
}
