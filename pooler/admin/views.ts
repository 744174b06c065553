// What the running pooler looks like in PgBouncer's terms: one typed row per database, pool, client,
// server, user and list, with PgBouncer's column names as property names. SHOW commands print these
// rows and /metrics exports them, so both always agree.
//
// The console itself appears as PgBouncer's does: a virtual database and pool "pgbouncer" whose
// clients are the console sessions.
import v8 from "node:v8";
import { unmappedAddress } from "../address.ts";
import { ADMIN_DB } from "../client-login.ts";
import type { CancelConnection, HeldCancel } from "../cancel-request.ts";
import type { ClientConnection } from "../client.ts";
import * as clock from "../clock.ts";
import type { Connection } from "../connection.ts";
import type { Pool } from "../pool.ts";
import type { Pooler } from "../pooler.ts";
import type { ServerConnection, ServerState } from "../server.ts";
import { sumCounters, zeroCounters, type Counters } from "../stats.ts";
import { describeTls } from "../tls.ts";
import { isSocketDir } from "../unix-socket.ts";

/** The user PgBouncer's admin pool is made for. */
const ADMIN_USER = "pgbouncer";
/** PgBouncer gives its admin database a pool of 2 in statement mode. */
const ADMIN_POOL_SIZE = 2;
const ADMIN_POOL_MODE = "statement";

export interface DatabaseRow {
  name: string;
  host: string | null;
  port: number;
  database: string;
  force_user: string | null;
  pool_size: number;
  min_pool_size: number;
  reserve_pool_size: number;
  /** Seconds. */
  server_lifetime: number;
  pool_mode: string | null;
  load_balance_hosts: string | null;
  max_connections: number;
  current_connections: number;
  max_client_connections: number;
  current_client_connections: number;
  paused: number;
  disabled: number;
}

export interface PoolRow {
  database: string;
  user: string;
  cl_active: number;
  cl_waiting: number;
  cl_active_cancel_req: number;
  cl_waiting_cancel_req: number;
  sv_active: number;
  sv_active_cancel: number;
  sv_being_canceled: number;
  sv_idle: number;
  sv_used: number;
  sv_tested: number;
  sv_login: number;
  maxwait: number;
  maxwait_us: number;
  pool_mode: string;
  load_balance_hosts: string | null;
  /** Ours, after PgBouncer's columns: clients pinned to their server by session state. */
  cl_pinned: number;
}

/** SHOW CLIENTS and SHOW SERVERS share their columns. */
export interface SocketRow {
  type: "C" | "S";
  user: string;
  database: string;
  replication: string;
  state: string;
  addr: string;
  port: number;
  local_addr: string;
  local_port: number;
  connect_time: string;
  request_time: string;
  wait: number;
  wait_us: number;
  close_needed: number;
  ptr: string;
  link: string;
  remote_pid: number;
  tls: string;
  application_name: string;
  prepared_statements: number;
  id: number;
}

/**
 * PgBouncer's buffer columns, in our terms: recv_pos and pkt_avail are the bytes held of a message
 * not yet whole, pkt_remain the bytes of it still to come, send_avail the bytes queued for writing
 * to this socket. The pooler passes whole messages on as they arrive, so nothing else waits.
 */
export interface SocketBufferRow extends SocketRow {
  recv_pos: number;
  pkt_pos: number;
  pkt_remain: number;
  send_pos: number;
  send_remain: number;
  pkt_avail: number;
  send_avail: number;
}

export interface UserRow {
  name: string;
  /** Text, as PgBouncer: the user's own pool_size or "" when it has none. */
  pool_size: string;
  reserve_pool_size: string;
  pool_mode: string | null;
  max_user_connections: number;
  current_connections: number;
  max_user_client_connections: number;
  current_client_connections: number;
}

export interface ListRow {
  list: string;
  items: number;
}

export interface StateRow {
  key: string;
  value: string;
}

export interface MemRow {
  name: string;
  size: number;
  used: number;
  free: number;
  memtotal: number;
}

export interface DatabaseStats {
  database: string;
  totals: Counters;
  averages: Counters;
}

/** Byte order, as PgBouncer's strcmp: the same whatever the locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byDatabaseThenUser(
  a: { database: string; user: string },
  b: { database: string; user: string },
): number {
  return compareText(a.database, b.database) || compareText(a.user, b.user);
}

/** PgBouncer keeps pools ordered by database, then user. */
function sortedPools(pooler: Pooler): Pool[] {
  return [...pooler.pools.values()].sort((a, b) =>
    byDatabaseThenUser({ database: a.db.name, user: a.user }, { database: b.db.name, user: b.user }),
  );
}

/**
 * Connections open to PostgreSQL per database and per user, in one walk: a walk per row was
 * quadratic in pools. A cancel request's own connection counts, as in PgBouncer 1.18's
 * current_connections and used_servers, though the pool limits leave it out.
 */
function serverCounts(pooler: Pooler): { byDatabase: Map<string, number>; byUser: Map<string, number> } {
  const byDatabase = new Map<string, number>();
  const byUser = new Map<string, number>();
  for (const pool of pooler.pools.values()) {
    const open = pool.serverCount + pool.cancels.size;
    byDatabase.set(pool.db.name, (byDatabase.get(pool.db.name) ?? 0) + open);
    byUser.set(pool.user, (byUser.get(pool.user) ?? 0) + open);
  }
  return { byDatabase, byUser };
}

/**
 * Clients SHOW CLIENTS lists: logged in, or waiting in a pool to finish logging in (for its first
 * server, or for one to take its startup settings), which PgBouncer lists as waiting (CL_WAITING_LOGIN),
 * or holding a CancelRequest on its way (PgBouncer's CL_ACTIVE_CANCEL / CL_WAITING_CANCEL).
 */
function listedClient(c: ClientConnection): boolean {
  if (c.state !== "login") return c.state !== "closed";
  return (c.pool !== null && c.waitStart > 0) || c.heldCancel !== null;
}

function adminClients(pooler: Pooler): ClientConnection[] {
  return [...pooler.clients].filter((c) => c.state === "admin");
}

export function databaseRows(pooler: Pooler): DatabaseRow[] {
  const c = pooler.config;
  const { byDatabase } = serverCounts(pooler);
  const rows: DatabaseRow[] = pooler.databases().map((db) => ({
    name: db.name,
    // no host=: the Unix socket in unix_socket_dir, which PgBouncer shows as NULL
    host: db.host || null,
    port: db.port,
    database: db.dbname ?? db.name,
    force_user: db.user ?? null,
    pool_size: db.poolSize ?? c.defaultPoolSize,
    min_pool_size: db.minPoolSize ?? c.minPoolSize,
    reserve_pool_size: db.reservePool ?? c.reservePoolSize,
    server_lifetime: Math.floor(pooler.serverLifetime(db) / 1000),
    pool_mode: db.poolMode ?? null,
    load_balance_hosts: null,
    max_connections: pooler.dbServerLimit(db),
    current_connections: byDatabase.get(db.name) ?? 0,
    max_client_connections: pooler.dbClientLimit(db),
    current_client_connections: pooler.clientCounts.ofDatabase(db.name),
    paused: pooler.pausedDbs.has(db.name) ? 1 : 0,
    disabled: pooler.disabledDbs.has(db.name) ? 1 : 0,
  }));
  rows.push({
    name: ADMIN_DB,
    host: null,
    port: pooler.port,
    database: ADMIN_DB,
    force_user: ADMIN_USER,
    pool_size: ADMIN_POOL_SIZE,
    min_pool_size: 0,
    reserve_pool_size: 0,
    server_lifetime: Math.floor(c.serverLifetime / 1000),
    pool_mode: ADMIN_POOL_MODE,
    load_balance_hosts: null,
    max_connections: 0,
    current_connections: 0,
    max_client_connections: pooler.dbClientLimit(undefined),
    current_client_connections: pooler.clientCounts.ofDatabase(ADMIN_DB),
    paused: 0,
    disabled: 0,
  });
  return rows.sort((a, b) => compareText(a.name, b.name));
}

/** Whole seconds and the microsecond rest, as PgBouncer splits waits. */
function splitWait(ms: number): { s: number; us: number } {
  const us = Math.max(0, Math.round(ms * 1000));
  return { s: Math.floor(us / 1e6), us: us % 1e6 };
}

export function poolRows(pooler: Pooler): PoolRow[] {
  const now = clock.now();
  // held until its own cancel connection is done, whether or not the server it cancels is still there
  const cancels = new Map<Pool, number>();
  for (const c of pooler.clients) {
    const pool = c.heldCancel?.pool;
    if (pool) cancels.set(pool, (cancels.get(pool) ?? 0) + 1);
  }
  const rows: PoolRow[] = sortedPools(pooler).map((pool) => {
    const oldest = pool.waiting[0];
    const welcomeWaiting = pool.welcomeWaiting;
    const oldestLogin = welcomeWaiting[0];
    const wait = splitWait(
      Math.max(oldest ? pool.waitedMs(oldest) : 0, oldestLogin ? now - oldestLogin.waitStart : 0),
    );
    const held = cancels.get(pool) ?? 0;
    const awaitingCheck = pool.idle.filter((s) => pool.awaitsCheck(s)).length;
    return {
      database: pool.db.name,
      user: pool.user,
      cl_active: pool.activeClientCount,
      cl_waiting: pool.waiting.length + welcomeWaiting.length,
      cl_active_cancel_req: held,
      cl_waiting_cancel_req: 0,
      sv_active: pool.active.size,
      // open until PostgreSQL closes it, whether or not its client is still there, as PgBouncer 1.18's
      sv_active_cancel: pool.cancels.size,
      sv_being_canceled: pool.beingCanceled.size,
      sv_idle: pool.idle.length - awaitingCheck,
      // PgBouncer's "used" servers await server_check_query; ours that are being reset or rolled
      // back are what it calls "tested".
      sv_used: awaitingCheck,
      sv_tested: pool.used.size,
      sv_login: pool.login.size,
      maxwait: wait.s,
      maxwait_us: wait.us,
      pool_mode: pool.settings.mode,
      load_balance_hosts: null,
      cl_pinned: pool.pinnedClients,
    };
  });
  rows.push(adminPoolRow(pooler));
  return rows.sort(byDatabaseThenUser);
}

function adminPoolRow(pooler: Pooler): PoolRow {
  return {
    database: ADMIN_DB,
    user: ADMIN_USER,
    cl_active: adminClients(pooler).length,
    cl_waiting: 0,
    cl_active_cancel_req: 0,
    cl_waiting_cancel_req: 0,
    sv_active: 0,
    sv_active_cancel: 0,
    sv_being_canceled: 0,
    sv_idle: 0,
    sv_used: 0,
    sv_tested: 0,
    sv_login: 0,
    maxwait: 0,
    maxwait_us: 0,
    pool_mode: ADMIN_POOL_MODE,
    load_balance_hosts: null,
    cl_pinned: 0,
  };
}

/** PgBouncer prints timestamps as text, "YYYY-MM-DD HH:MM:SS TZ"; ours are in UTC. */
function timestamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** PgBouncer's ptr/link are object addresses; a connection's id serves the same purpose. */
function ptr(conn: Connection): string {
  return `0x${conn.id.toString(16)}`;
}

/** `unixPort`: a Unix-socket connection, which PgBouncer lists as addr "unix" and the socket's port. */
function socketRow(
  conn: Connection,
  fields: Pick<SocketRow, "type" | "user" | "database" | "state">,
  unixPort: number | null,
): SocketRow {
  const s = conn.socket;
  return {
    ...fields,
    replication: "none",
    addr: unixPort === null ? unmappedAddress(s.remoteAddress ?? "") : "unix",
    port: unixPort ?? s.remotePort ?? 0,
    local_addr: unixPort === null ? unmappedAddress(s.localAddress ?? "") : "unix",
    local_port: unixPort ?? s.localPort ?? 0,
    connect_time: timestamp(clock.wallClock(conn.connectTime)),
    request_time: timestamp(clock.wallClock(conn.lastActivity)),
    wait: 0,
    wait_us: 0,
    close_needed: 0,
    ptr: ptr(conn),
    link: "",
    remote_pid: 0,
    tls: describeTls(s),
    application_name: "",
    prepared_statements: 0,
    id: conn.id,
  };
}

/** Logged-in clients, listed pool by pool as PgBouncer walks its pool list. */
export function clientRows(pooler: Pooler): SocketRow[] {
  const now = clock.now();
  return sortedClients(pooler).map((c) => clientRow(c, now, pooler.port));
}

/** The user of the pool a client is in: console sessions share PgBouncer's admin pool. */
function poolUser(c: ClientConnection): string {
  return c.pool?.user ?? ADMIN_USER;
}

/**
 * Logged-in clients (console sessions too), by database, then user; in a pool the active ones
 * before the waiting ones, as PgBouncer walks a pool's active_client_list, then its waiting one,
 * which a client joins at the end when its wait begins, then its held cancel requests, on their
 * way before waiting; those for peers come last, as PgBouncer's peer pools.
 */
function sortedClients(pooler: Pooler): ClientConnection[] {
  // waitStart is 0 for the active ones (their order stays), a time for the waiting ones
  return [...pooler.clients]
    .filter(listedClient)
    .map((c) => ({ ...poolOf(c), client: c, held: c.heldCancel }))
    .sort(
      (a, b) =>
        Number(a.held?.pool === null) - Number(b.held?.pool === null) ||
        byDatabaseThenUser(a, b) ||
        heldRank(a.held) - heldRank(b.held) ||
        a.client.waitStart - b.client.waitStart,
    )
    .map((entry) => entry.client);
}

/** A pool's clients, then its cancel requests on their way, then those waiting for their turn. */
function heldRank(held: HeldCancel | null): number {
  return held === null ? 0 : held.waiting ? 2 : 1;
}

/** The database and user of the pool a client is listed under: a held cancel request's target's. */
function poolOf(c: ClientConnection): { database: string; user: string } {
  const held = c.heldCancel;
  if (held !== null) return { database: held.pool?.db.name ?? "", user: held.pool?.user ?? "" };
  return { database: c.database, user: poolUser(c) };
}

function clientRow(c: ClientConnection, now: number, listenPort: number): SocketRow {
  const held = c.heldCancel;
  if (held !== null) {
    const state = held.waiting ? "waiting_cancel_req" : "active_cancel_req";
    const database = held.pool?.db.name ?? "";
    const row = socketRow(
      c,
      { type: "C", user: "(nouser)", database, state },
      c.unixSocket ? listenPort : null,
    );
    return { ...row, link: held.connection ? ptr(held.connection) : "" };
  }
  const waiting = c.waitStart > 0;
  // queued: to the microsecond; else waiting for its server's parameter sync, in whole ms
  const wait = splitWait(waiting ? c.pool?.waitedMs(c) || now - c.waitStart : 0);
  return {
    ...socketRow(
      c,
      {
        type: "C",
        user: c.user,
        database: c.database,
        state: waiting ? "waiting" : c.server ? "active" : "idle",
      },
      c.unixSocket ? listenPort : null,
    ),
    wait: wait.s,
    wait_us: wait.us,
    link: c.server ? ptr(c.server) : "",
    application_name: c.param("application_name") ?? "",
    prepared_statements: c.preparedStatementCount,
  };
}

/** PgBouncer's names for our server states. */
const SERVER_STATE: Record<ServerState, string> = {
  active: "active",
  idle: "idle",
  used: "tested",
  login: "new",
  closed: "closed",
};

/**
 * Pool by pool in PgBouncer 1.18's order: its servers, then the cancel requests' own connections
 * (active_cancel, linked to the client whose request it carries while that one waits), then the
 * servers free but for a cancel on its way (being_canceled).
 */
export function serverRows(pooler: Pooler): SocketRow[] {
  const heldBy = new Map<CancelConnection, ClientConnection>();
  for (const c of pooler.clients) {
    const connection = c.heldCancel?.connection;
    if (connection) heldBy.set(connection, c);
  }
  const rows: SocketRow[] = [];
  for (const pool of sortedPools(pooler)) {
    for (const server of pool.allServers())
      if (!pool.beingCanceled.has(server)) rows.push(serverRow(pool, server, serverState(pool, server)));
    for (const conn of pool.cancels) {
      const client = heldBy.get(conn);
      rows.push({ ...serverSocketRow(pool, conn, "active_cancel"), link: client ? ptr(client) : "" });
    }
    for (const server of pool.beingCanceled) rows.push(serverRow(pool, server, "being_canceled"));
  }
  return rows;
}

/** A connection to `pool`'s PostgreSQL, at its target's address when a Unix socket has none. */
function serverSocketRow(
  pool: Pool,
  conn: Connection & { target: { host: string; port: number } },
  state: string,
): SocketRow {
  const { host, port } = conn.target;
  const row = socketRow(
    conn,
    { type: "S", user: pool.user, database: pool.db.name, state },
    isSocketDir(host) ? port : null,
  );
  return { ...row, addr: row.addr || host, port: row.port || port };
}

function serverRow(pool: Pool, server: ServerConnection, state: string): SocketRow {
  const client = server.client as ClientConnection | null;
  return {
    ...serverSocketRow(pool, server, state),
    close_needed: server.closeNeeded ? 1 : 0,
    link: client ? ptr(client) : "",
    remote_pid: server.backendPid,
    application_name: client?.param("application_name") ?? "",
    prepared_statements: server.statements?.size ?? 0,
  };
}

/** PgBouncer's names for the lists SHOW SOCKETS finds a server in. */
const SERVER_LIST: Record<ServerState, string> = {
  active: "sv_active",
  idle: "sv_idle",
  used: "sv_tested",
  login: "sv_login",
  closed: "sv_closed",
};

/** SHOW SERVERS' state: PgBouncer's name, "used" for an idle server awaiting server_check_query. */
function serverState(pool: Pool, server: ServerConnection): string {
  return pool.awaitsCheck(server) ? "used" : SERVER_STATE[server.state];
}

/**
 * SHOW SOCKETS: every client (logged in, then logging in) and server in use, with PgBouncer's buffer
 * columns after SHOW CLIENTS' own; `busyOnly` (SHOW ACTIVE_SOCKETS) keeps those holding bytes.
 */
export function socketBufferRows(pooler: Pooler, busyOnly: boolean): SocketBufferRow[] {
  const now = clock.now();
  const rows: SocketBufferRow[] = [];
  const add = (conn: Connection, row: SocketRow, state: string): void => {
    const held = conn.framing?.held ?? 0;
    const missing = conn.framing?.missing ?? 0;
    const queued = conn.socket.writableLength;
    if (busyOnly && held + missing + queued === 0) return;
    rows.push({
      ...row,
      state,
      recv_pos: held,
      pkt_pos: 0,
      pkt_remain: missing,
      send_pos: 0,
      send_remain: 0,
      pkt_avail: held,
      send_avail: queued,
    });
  };
  // pool by pool, as PgBouncer: a pool's clients, then its servers (a stable sort keeps that order)
  const listed: { database: string; user: string; list: () => void }[] = [];
  // as PgBouncer 1.18's, without the held cancel requests
  for (const c of sortedClients(pooler)) {
    if (c.heldCancel !== null) continue;
    const list = (): void =>
      add(c, clientRow(c, now, pooler.port), c.waitStart > 0 ? "cl_waiting" : "cl_active");
    listed.push({ database: c.database, user: poolUser(c), list });
  }
  for (const pool of sortedPools(pooler)) {
    // as PgBouncer 1.18's, without the servers being canceled (nor the cancels' own connections)
    for (const server of pool.allServers()) {
      if (pool.beingCanceled.has(server)) continue;
      const list = (): void =>
        add(
          server,
          serverRow(pool, server, serverState(pool, server)),
          pool.awaitsCheck(server) ? "sv_used" : SERVER_LIST[server.state],
        );
      listed.push({ database: pool.db.name, user: pool.user, list });
    }
  }
  for (const entry of listed.sort(byDatabaseThenUser)) entry.list();
  for (const c of pooler.clients) {
    if (c.state !== "login" || listedClient(c)) continue;
    const row = clientRow(c, now, pooler.port);
    add(c, { ...row, user: c.user || "(nouser)", database: c.database || "(nodb)" }, "cl_login");
  }
  return rows;
}

export function userRows(pooler: Pooler): UserRow[] {
  const c = pooler.config;
  const names = new Set<string>([ADMIN_USER, ...c.authUsers.keys(), ...c.users.keys()]);
  for (const pool of pooler.pools.values()) names.add(pool.user);
  for (const client of pooler.clients) if (client.user) names.add(client.user);
  const { byUser } = serverCounts(pooler);
  return [...names].sort(compareText).map((name) => {
    const u = c.users.get(name);
    return {
      name,
      // PgBouncer prints the override with "%9d".
      pool_size: u?.poolSize === undefined ? "" : String(u.poolSize).padStart(9),
      reserve_pool_size: "",
      pool_mode: u?.poolMode ?? null,
      max_user_connections: u?.maxUserConnections ?? c.maxUserConnections,
      current_connections: byUser.get(name) ?? 0,
      max_user_client_connections: pooler.userClientLimit(name),
      current_client_connections: pooler.clientCounts.ofUser(name),
    };
  });
}

export function listRows(pooler: Pooler): ListRow[] {
  let servers = 0;
  for (const n of serverCounts(pooler).byDatabase.values()) servers += n;
  const login = [...pooler.clients].filter((c) => c.state === "login" && !listedClient(c)).length;
  const dns = pooler.dns.counts();
  return [
    { list: "databases", items: databaseRows(pooler).length },
    { list: "users", items: userRows(pooler).length },
    { list: "peers", items: pooler.peers.configuredPeers().length },
    // the admin pool counts, as in PgBouncer
    { list: "pools", items: pooler.pools.size + 1 },
    { list: "peer_pools", items: pooler.peers.rows().length },
    // No free lists: connection objects are garbage collected, not cached for reuse.
    { list: "free_clients", items: 0 },
    { list: "used_clients", items: pooler.clients.size },
    { list: "login_clients", items: login },
    { list: "free_servers", items: 0 },
    { list: "used_servers", items: servers },
    { list: "dns_names", items: dns.names },
    { list: "dns_zones", items: 0 },
    { list: "dns_queries", items: dns.queries },
    { list: "dns_pending", items: dns.pending },
  ];
}

export interface PeerRow {
  peer_id: number;
  host: string;
  port: number;
  pool_size: number;
}

export function peerRows(pooler: Pooler): PeerRow[] {
  return pooler.peers.configuredPeers().map((peer) => ({
    peer_id: peer.id,
    host: peer.host || pooler.config.unixSocketDir,
    port: peer.port,
    pool_size: peer.poolSize ?? pooler.config.defaultPoolSize,
  }));
}

export function stateRows(pooler: Pooler): StateRow[] {
  return [
    { key: "active", value: pooler.pausedAll ? "no" : "yes" },
    { key: "paused", value: pooler.pausedAll ? "yes" : "no" },
    { key: "suspended", value: "no" },
  ];
}

/**
 * What the process really holds. PgBouncer lists its slab caches; a Node process holds V8 heap
 * spaces, memory outside the heap and socket buffers. Every number is bytes: `size` reserved,
 * `used` in use, `free` available, `memtotal` resident.
 */
export function memRows(pooler: Pooler): MemRow[] {
  const rows: MemRow[] = v8.getHeapSpaceStatistics().map((s) => ({
    name: s.space_name,
    size: s.space_size,
    used: s.space_used_size,
    free: s.space_available_size,
    memtotal: s.physical_space_size,
  }));
  const whole = (name: string, bytes: number): MemRow => ({
    name,
    size: bytes,
    used: bytes,
    free: 0,
    memtotal: bytes,
  });
  const mem = process.memoryUsage();
  let buffered = 0;
  const sockets = [...pooler.clients, ...[...pooler.pools.values()].flatMap((p) => p.allServers())];
  for (const conn of sockets) buffered += conn.socket.writableLength + conn.socket.readableLength;
  rows.push(whole("external", mem.external), whole("array_buffers", mem.arrayBuffers));
  rows.push(whole("socket_buffers", buffered), whole("rss", mem.rss));
  return rows;
}

/** Stats per database (PgBouncer sums its pools), the console's database included. */
export function databaseStats(pooler: Pooler): DatabaseStats[] {
  const byDb = new Map<string, Pool[]>();
  for (const pool of pooler.pools.values()) byDb.set(pool.db.name, [...(byDb.get(pool.db.name) ?? []), pool]);
  const rows: DatabaseStats[] = [...byDb].map(([database, pools]) => {
    const totals = sumCounters(pools.map((p) => p.stats));
    const older = sumCounters(pools.map((p) => p.stats.older));
    return { database, totals, averages: pooler.statsPeriod.averagesSince(totals, older) };
  });
  rows.push({ database: ADMIN_DB, totals: zeroCounters(), averages: zeroCounters() });
  return rows.sort((a, b) => compareText(a.database, b.database));
}

/** All pools together (SHOW TOTALS). */
export function overallStats(pooler: Pooler): { totals: Counters; averages: Counters } {
  const stats = [...pooler.poolStats()];
  const totals = sumCounters(stats);
  return {
    totals,
    averages: pooler.statsPeriod.averagesSince(totals, sumCounters(stats.map((s) => s.older))),
  };
}
