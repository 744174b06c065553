// The admin console (virtual database "pgbouncer") against PgBouncer 1.25: column names and types,
// real stats, the control commands under load, and who may run what.
import fs from "node:fs";
import os from "node:os";
import net from "node:net";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../pooler/config/index.ts";
import {
  cancelKeyOf,
  connect,
  errorOf,
  fatalDuring,
  pgbench,
  psql,
  rawExchange,
  whoAmI,
} from "../support/clients.ts";
import { autodbEntry, forcedEntry, iniOf, unforcedEntry } from "../support/databases-ini.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";
import { createLoginRole } from "../support/roles.ts";
import { waitFor } from "../support/wait.ts";
import { cancelRequest, query } from "../../pooler/protocol/messages.ts";

const TEXT = 25;
const INT4 = 23;
const INT8 = 20;
const NUMERIC = 1700;

/** PgBouncer 1.25.2's result sets (src/admin.c, src/stats.c), column by column. */
const SOCKET_COLUMNS: [string, number][] = [
  ["type", TEXT],
  ["user", TEXT],
  ["database", TEXT],
  ["replication", TEXT],
  ["state", TEXT],
  ["addr", TEXT],
  ["port", INT4],
  ["local_addr", TEXT],
  ["local_port", INT4],
  ["connect_time", TEXT],
  ["request_time", TEXT],
  ["wait", INT4],
  ["wait_us", INT4],
  ["close_needed", INT4],
  ["ptr", TEXT],
  ["link", TEXT],
  ["remote_pid", INT4],
  ["tls", TEXT],
  ["application_name", TEXT],
  ["prepared_statements", INT4],
  ["id", INT4],
];
/** SHOW SOCKETS and ACTIVE_SOCKETS: SHOW CLIENTS' columns, then the buffer ones (socket_header's debug). */
const SOCKET_BUFFER_COLUMNS: [string, number][] = [
  ...SOCKET_COLUMNS,
  ...["recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"].map(
    (n): [string, number] => [n, INT4],
  ),
];
const numeric = (names: string[]): [string, number][] => names.map((n) => [n, NUMERIC]);
const EXPECTED: Record<string, [string, number][]> = {
  POOLS: [
    ["database", TEXT],
    ["user", TEXT],
    ["cl_active", INT4],
    ["cl_waiting", INT4],
    ["cl_active_cancel_req", INT4],
    ["cl_waiting_cancel_req", INT4],
    ["sv_active", INT4],
    ["sv_active_cancel", INT4],
    ["sv_being_canceled", INT4],
    ["sv_idle", INT4],
    ["sv_used", INT4],
    ["sv_tested", INT4],
    ["sv_login", INT4],
    ["maxwait", INT4],
    ["maxwait_us", INT4],
    ["pool_mode", TEXT],
    ["load_balance_hosts", TEXT],
    // ours, after PgBouncer's: tools that read columns by name are unaffected
    ["cl_pinned", INT4],
  ],
  CLIENTS: SOCKET_COLUMNS,
  SERVERS: SOCKET_COLUMNS,
  SOCKETS: SOCKET_BUFFER_COLUMNS,
  ACTIVE_SOCKETS: SOCKET_BUFFER_COLUMNS,
  DATABASES: [
    ["name", TEXT],
    ["host", TEXT],
    ["port", INT4],
    ["database", TEXT],
    ["force_user", TEXT],
    ["pool_size", INT4],
    ["min_pool_size", INT4],
    ["reserve_pool_size", INT4],
    ["server_lifetime", INT4],
    ["pool_mode", TEXT],
    ["load_balance_hosts", TEXT],
    ["max_connections", INT4],
    ["current_connections", INT4],
    ["max_client_connections", INT4],
    ["current_client_connections", INT4],
    ["paused", INT4],
    ["disabled", INT4],
  ],
  USERS: [
    ["name", TEXT],
    ["pool_size", TEXT],
    ["reserve_pool_size", TEXT],
    ["pool_mode", TEXT],
    ["max_user_connections", INT4],
    ["current_connections", INT4],
    ["max_user_client_connections", INT4],
    ["current_client_connections", INT4],
  ],
  STATS: [
    ["database", TEXT],
    ...numeric([
      "total_server_assignment_count",
      "total_xact_count",
      "total_query_count",
      "total_received",
      "total_sent",
      "total_xact_time",
      "total_query_time",
      "total_wait_time",
      "total_client_parse_count",
      "total_server_parse_count",
      "total_bind_count",
      "avg_server_assignment_count",
      "avg_xact_count",
      "avg_query_count",
      "avg_recv",
      "avg_sent",
      "avg_xact_time",
      "avg_query_time",
      "avg_wait_time",
      "avg_client_parse_count",
      "avg_server_parse_count",
      "avg_bind_count",
    ]),
  ],
  STATS_TOTALS: [
    ["database", TEXT],
    ...numeric([
      "server_assignment_count",
      "xact_count",
      "query_count",
      "bytes_received",
      "bytes_sent",
      "xact_time",
      "query_time",
      "wait_time",
      "client_parse_count",
      "server_parse_count",
      "bind_count",
    ]),
  ],
  STATS_AVERAGES: [
    ["database", TEXT],
    ...numeric([
      "server_assignment_count",
      "xact_count",
      "query_count",
      "bytes_received",
      "bytes_sent",
      "xact_time",
      "query_time",
      "wait_time",
      "avg_client_parse_count",
      "avg_server_parse_count",
      "avg_bind_count",
    ]),
  ],
  TOTALS: [
    ["name", TEXT],
    ["value", NUMERIC],
  ],
  LISTS: [
    ["list", TEXT],
    ["items", INT4],
  ],
  CONFIG: [
    ["key", TEXT],
    ["value", TEXT],
    ["default", TEXT],
    ["changeable", TEXT],
  ],
  MEM: [
    ["name", TEXT],
    ["size", INT4],
    ["used", INT4],
    ["free", INT4],
    ["memtotal", INT4],
  ],
  STATE: [
    ["key", TEXT],
    ["value", TEXT],
  ],
  VERSION: [["version", TEXT]],
  PEERS: [
    ["peer_id", INT4],
    ["host", TEXT],
    ["port", INT4],
    ["pool_size", INT4],
  ],
  DNS_HOSTS: [
    ["hostname", TEXT],
    ["ttl", INT8],
    ["addrs", TEXT],
  ],
};

/** SHOW LISTS rows and SHOW TOTALS names of PgBouncer 1.25.2, in order. */
const LISTS = [
  "databases",
  "users",
  "peers",
  "pools",
  "peer_pools",
  "free_clients",
  "used_clients",
  "login_clients",
  "free_servers",
  "used_servers",
  "dns_names",
  "dns_zones",
  "dns_queries",
  "dns_pending",
];
const TOTALS_STATS = [
  "server_assignment_count",
  "xact_count",
  "query_count",
  "client_bytes",
  "server_bytes",
  "xact_time",
  "query_time",
  "wait_time",
  "ps_client_parse_count",
  "ps_server_parse_count",
  "ps_bind_count",
];

let authDir: string;
/** The settings of every pooler here: a userlist with a stats user and a user of neither list. */
let baseEnv: Record<string, string>;

beforeAll(() => {
  authDir = fs.mkdtempSync(path.join(os.tmpdir(), "admin-test-"));
  const userlist = path.join(authDir, "userlist.txt");
  fs.writeFileSync(
    userlist,
    '"postgres" "postgres"\n"stats_reader" "stats-secret"\n"outsider" "outsider-secret"\n',
  );
  baseEnv = { AUTH_FILE: userlist, ADMIN_USERS: "postgres", STATS_USERS: "stats_reader" };
});

afterAll(() => fs.rmSync(authDir, { recursive: true, force: true }));

function consoleUrl(tp: TestPooler, user = "postgres", password = "postgres"): string {
  return `postgresql://${user}:${password}@127.0.0.1:${tp.port}/pgbouncer`;
}

/** Rows of a SHOW, values as text (how the console sends them). */
async function show(admin: pg.Client, what: string): Promise<Record<string, string | null>[]> {
  const r = await admin.query({ text: `SHOW ${what}`, types: { getTypeParser: () => (v: string) => v } });
  return r.rows as Record<string, string | null>[];
}

async function row(
  admin: pg.Client,
  what: string,
  key: string,
  value: string,
): Promise<Record<string, string | null>> {
  const found = (await show(admin, what)).find((r) => r[key] === value);
  if (!found) throw new Error(`SHOW ${what}: no row with ${key} = ${value}`);
  return found;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(50);
  }
}

/** Whether `p` is still pending after `ms`. */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  return (await Promise.race([p.then(() => "settled"), sleep(ms).then(() => pending)])) === pending;
}

describe("admin console", () => {
  let tp: TestPooler;
  let admin: pg.Client;

  beforeAll(async () => {
    tp = await startTestPooler(baseEnv);
    admin = await connect(consoleUrl(tp));
  });

  afterAll(async () => {
    await admin.end();
    await tp.stop();
  });

  it("answers every SHOW with PgBouncer 1.25's column names and types", async () => {
    const app = await connect(tp.url());
    await app.query("SELECT 1");
    for (const [command, expected] of Object.entries(EXPECTED)) {
      const r = await admin.query(`SHOW ${command}`);
      expect(
        r.fields.map((f) => [f.name, f.dataTypeID]),
        `SHOW ${command}`,
      ).toEqual(expected);
    }
    expect((await show(admin, "LISTS")).map((r) => r.list)).toEqual(LISTS);
    expect((await show(admin, "TOTALS")).map((r) => r.name)).toEqual([
      ...TOTALS_STATS.map((s) => `total_${s}`),
      ...TOTALS_STATS.map((s) => `avg_${s}`),
    ]);
    expect((await show(admin, "VERSION"))[0]!.version).toBe("PgBouncer 1.25.2");
    expect(await show(admin, "STATE")).toEqual([
      { key: "active", value: "yes" },
      { key: "paused", value: "no" },
      { key: "suspended", value: "no" },
    ]);
    await app.end();
  });

  it("shows the live pools, clients, servers and databases, the console's own included", async () => {
    const app = await connect(tp.url(), { application_name: "shown" });
    await app.query("BEGIN");
    await app.query("SELECT 1");
    const pool = await row(admin, "POOLS", "database", "app");
    expect(pool).toMatchObject({
      user: "postgres",
      cl_active: "1",
      cl_waiting: "0",
      sv_active: "1",
      pool_mode: "transaction",
    });
    expect(await row(admin, "POOLS", "database", "pgbouncer")).toMatchObject({
      user: "pgbouncer",
      pool_mode: "statement",
    });

    const client = await row(admin, "CLIENTS", "application_name", "shown");
    expect(client).toMatchObject({
      type: "C",
      user: "postgres",
      database: "app",
      state: "active",
      addr: "127.0.0.1",
    });
    expect(client.connect_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    const server = await row(admin, "SERVERS", "link", client.ptr!);
    expect(server).toMatchObject({
      type: "S",
      database: "app",
      state: "active",
      application_name: "shown",
      link: client.ptr,
    });
    expect(Number(server.remote_pid)).toBe((await app.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    expect(
      (await show(admin, "CLIENTS")).some((r) => r.database === "pgbouncer" && r.user === "postgres"),
    ).toBe(true);

    const db = await row(admin, "DATABASES", "name", "app");
    expect(db).toMatchObject({
      host: "127.0.0.1",
      port: String(inject("pgPort")),
      database: "app",
      pool_size: "20",
      paused: "0",
      disabled: "0",
    });
    expect(Number(db.current_connections)).toBeGreaterThanOrEqual(1);
    expect(await row(admin, "DATABASES", "name", "pgbouncer")).toMatchObject({
      host: null,
      force_user: "pgbouncer",
      pool_mode: "statement",
    });
    await app.query("COMMIT");
    await app.end();
  });

  it("SHOW SOCKETS lists every connection, logging in or not; ACTIVE_SOCKETS those holding or owing bytes", async () => {
    const app = await connect(tp.url(), { application_name: "sockets" });
    await app.query("BEGIN");
    // logs in and stops half-way through a Query: 5 header bytes and 3 of its 23 body bytes
    const half = await RawClient.connect(tp.url());
    const whole = query("SELECT 'sockets-half'");
    half.send(whole.subarray(0, 8));
    // has the pooler send it a large result it never reads
    const deaf = await RawClient.connect(tp.url());
    deaf.release().pause();
    deaf.send(query("SELECT repeat('x', 32 * 1024 * 1024)"));
    // connected, nothing sent: still logging in
    const mute = net.connect(tp.port, "127.0.0.1");
    await new Promise((resolve) => mute.once("connect", resolve));
    try {
      await waitFor(
        async () => (await busy()).some((r) => Number(r.send_avail) > 0),
        "the deaf client's queue",
      );
      await waitFor(async () => (await busy()).some((r) => r.recv_pos === "8"), "the half Query");
      await waitFor(
        async () => (await show(admin, "SOCKETS")).some((r) => r.state === "cl_login"),
        "the mute client",
      );
      const sockets = await show(admin, "SOCKETS");
      const mine = sockets.find((r) => r.application_name === "sockets" && r.type === "C")!;
      expect(mine).toMatchObject({ state: "cl_active", user: "postgres", database: "app" });
      expect(sockets.find((r) => r.type === "S" && r.link === mine.ptr)).toMatchObject({
        state: "sv_active",
      });
      expect(sockets.find((r) => r.state === "cl_login")).toMatchObject({
        user: "(nouser)",
        database: "(nodb)",
      });
      expect(sockets.some((r) => r.database === "pgbouncer" && r.state === "cl_active")).toBe(true);

      const active = await busy();
      expect(active.find((r) => r.recv_pos === "8")).toMatchObject({
        type: "C",
        state: "cl_active",
        pkt_pos: "0",
        pkt_remain: String(whole.length - 8),
        pkt_avail: "8",
      });
      // the idle transaction's client and server hold nothing, so they are not active sockets
      expect(active.some((r) => r.ptr === mine.ptr || r.link === mine.ptr)).toBe(false);
    } finally {
      mute.destroy();
      deaf.destroy();
      half.destroy();
      await app.query("ROLLBACK");
      await app.end();
    }

    async function busy(): Promise<Record<string, string | null>[]> {
      return show(admin, "ACTIVE_SOCKETS");
    }
  });

  it("counts transactions, queries, bytes and times for real", async () => {
    const before = await row(admin, "STATS_TOTALS", "database", "app");
    const app = await connect(tp.url());
    for (let i = 0; i < 5; i++) await app.query("SELECT 1");
    await app.query("BEGIN");
    await app.query("SELECT pg_sleep(0.05)");
    await app.query("COMMIT");
    await app.end();
    const after = await row(admin, "STATS_TOTALS", "database", "app");
    const delta = (k: string): number => Number(after[k]) - Number(before[k]);
    expect(delta("xact_count")).toBe(6);
    expect(delta("query_count")).toBe(8);
    expect(delta("server_assignment_count")).toBe(6);
    expect(delta("bytes_received")).toBeGreaterThan(8 * 10);
    expect(delta("bytes_sent")).toBeGreaterThan(8 * 10);
    expect(delta("xact_time")).toBeGreaterThanOrEqual(50_000);
    expect(delta("query_time")).toBeGreaterThanOrEqual(50_000);
    expect(delta("wait_time")).toBeGreaterThanOrEqual(0);
    // SHOW STATS and SHOW TOTALS report the same totals
    const stats = await row(admin, "STATS", "database", "app");
    expect(stats.total_xact_count).toBe(after.xact_count);
    const totals = await show(admin, "TOTALS");
    // whole numbers, as PgBouncer counts them (times in microseconds): no "319178.02899999515"
    const numbers = [...Object.values(after), ...Object.values(stats), ...totals.map((r) => r.value)];
    expect(numbers.filter((v) => v !== "app" && !/^\d+$/.test(v ?? ""))).toEqual([]);
    expect(Number(totals.find((r) => r.name === "total_xact_count")!.value)).toBeGreaterThanOrEqual(
      Number(after.xact_count),
    );
  });

  it("counts named statements: client Parses, the pooler's Parses on servers, Binds, and what each side holds", async () => {
    const app = await connect(tp.url());
    try {
      await app.query("SELECT 1"); // the pool and its stats row exist from here
      const before = await row(admin, "STATS_TOTALS", "database", "app");
      for (let i = 0; i < 3; i++)
        await app.query({ name: "counted", text: "SELECT $1::int AS n", values: [i] });
      const after = await row(admin, "STATS_TOTALS", "database", "app");
      const delta = (k: string): number => Number(after[k]) - Number(before[k]);
      // node-postgres parses a named statement once, then only binds it
      expect(delta("client_parse_count")).toBe(1);
      expect(delta("bind_count")).toBe(3);
      // the pooler prepares it on each server the client is given that lacks it: at least once
      expect(delta("server_parse_count")).toBeGreaterThanOrEqual(1);
      expect(delta("server_parse_count")).toBeLessThanOrEqual(3);
      const client = (await show(admin, "CLIENTS")).filter(
        (r) => r.database === "app" && r.prepared_statements !== "0",
      );
      expect(client.map((r) => r.prepared_statements)).toEqual(["1"]);
      const servers = await show(admin, "SERVERS");
      expect(servers.some((r) => Number(r.prepared_statements) >= 1)).toBe(true);
    } finally {
      await app.end();
    }
  });

  it("presents itself with PgBouncer's parameters (1.18, measured), as its SHOW datestyle/timezone answer", async () => {
    const c = await RawClient.connect(consoleUrl(tp));
    try {
      expect(c.parameters).toEqual([
        ["server_version", "1.25.2/bouncer"],
        ["client_encoding", "UTF8"],
        ["server_encoding", "UTF8"],
        ["DateStyle", "ISO"],
        ["TimeZone", "GMT"],
        ["standard_conforming_strings", "on"],
        ["is_superuser", "on"],
        ["integer_datetimes", "on"],
        ["application_name", ""],
      ]);
    } finally {
      await c.close();
    }
    expect((await admin.query("SHOW timezone")).rows).toEqual([{ timezone: "GMT" }]);
  });

  it("works from psql", async () => {
    expect((await psql(consoleUrl(tp), "SHOW VERSION")).stdout.trim()).toBe("PgBouncer 1.25.2");
    const pools = await psql(consoleUrl(tp), "show pools;");
    expect(pools.stdout).toMatch(/^app\|postgres\|/m);
    const help = await psql(consoleUrl(tp), "SHOW HELP");
    expect(help.stderr).toContain("Console usage");
    expect(help.stderr).toContain("SHOW HELP|CONFIG|DATABASES");
  });

  it("answers unknown commands, bad arguments and the extended protocol with an ErrorResponse", async () => {
    const bogus = await errorOf(admin.query("SHOW BOGUS"));
    expect(bogus.message).toBe("invalid command 'SHOW BOGUS', use SHOW HELP;");
    expect(bogus.code).toBe("42601");
    expect((await errorOf(admin.query("FROBNICATE"))).code).toBe("42601");
    expect((await errorOf(admin.query("SHOW POOLS; SHOW STATS"))).code).toBe("42601");
    expect((await errorOf(admin.query("PAUSE nosuchdb"))).message).toBe("no such database: nosuchdb");
    expect((await errorOf(admin.query("PAUSE pgbouncer"))).message).toBe("cannot pause admin db: pgbouncer");
    expect((await errorOf(admin.query("DISABLE"))).message).toBe("a database is required");
    expect((await errorOf(admin.query("RESUME"))).message).toBe("pooler is not paused/suspended");
    const resumeUnknown = await errorOf(admin.query("RESUME nosuchdb"));
    expect([resumeUnknown.code, resumeUnknown.message]).toEqual(["3D000", "no such database: nosuchdb"]);
    expect((await errorOf(admin.query("KILL_CLIENT abc"))).message).toBe("invalid client pointer supplied");
    expect((await errorOf(admin.query("KILL_CLIENT 999999"))).message).toBe("client not found");
    expect((await errorOf(admin.query("SHUTDOWN NOW"))).code).toBe("42601");
    // the session is still usable after errors; case, quoting and a trailing ';' do not matter
    expect((await admin.query('show "version";')).rows[0].version).toBe("PgBouncer 1.25.2");

    const other = await connect(consoleUrl(tp));
    const extended = await errorOf(other.query({ name: "stmt", text: "SHOW POOLS" }));
    expect(extended.message).toBe("extended query protocol not supported by admin console");
    await other.end().catch(() => undefined);
  });

  it("SET changes a setting online; SHOW CONFIG and the pools see it", async () => {
    expect((await admin.query("SET default_pool_size = 7")).command).toBe("SET");
    expect((await row(admin, "CONFIG", "key", "default_pool_size")).value).toBe("7");
    expect((await row(admin, "DATABASES", "name", "app")).pool_size).toBe("7");
    await admin.query("SET query_wait_timeout = '0.5'");
    expect((await row(admin, "CONFIG", "key", "query_wait_timeout")).value).toBe("0.5");
    const fixed = await errorOf(admin.query("SET listen_port = 1"));
    expect(fixed.code).toBe("22023");
    expect(fixed.message).toContain("cannot be changed online");
    expect((await errorOf(admin.query("SET no_such_setting = 1"))).message).toContain("unknown parameter");
    const notices: string[] = [];
    admin.on("notice", (n) => notices.push(n.message ?? ""));
    await admin.query("SET client_encoding = 'UTF8'");
    expect(notices).toContain("SET ignored");
    await admin.query("SET default_pool_size = 20");
    await admin.query("SET query_wait_timeout = 120");
  });

  it("KILL_CLIENT drops one client", async () => {
    const victim = await connect(tp.url(), { application_name: "victim" });
    const bystander = await connect(tp.url(), { application_name: "bystander" });
    const { id } = await row(admin, "CLIENTS", "application_name", "victim");
    await admin.query(`KILL_CLIENT ${id}`);
    const err = await errorOf(victim.query("SELECT 1"));
    expect(err.message).toMatch(/admin forced disconnect|Connection terminated|not queryable/);
    expect((await bystander.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await bystander.end();
  });

  it("DISABLE refuses new clients of a database, ENABLE lets them in again", async () => {
    const connected = await connect(tp.url());
    await admin.query("DISABLE app");
    expect((await row(admin, "DATABASES", "name", "app")).disabled).toBe("1");
    const refused = await errorOf(connect(tp.url()));
    expect(refused.code).toBe("57P03");
    expect(refused.message).toBe('database "app" is disabled');
    // as PgBouncer 1.18: told only once authenticated
    expect((await errorOf(connect(tp.urlAs("postgres", "wrong")))).code).toBe("28P01");
    expect((await connected.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    await admin.query("ENABLE app");
    const again = await connect(tp.url());
    await again.query("SELECT 1");
    await Promise.all([again.end(), connected.end()]);
  });

  it("KILL drops a database's clients and servers and holds new clients until RESUME", async () => {
    const old = await connect(tp.url());
    await old.query("SELECT 1");
    expect((await admin.query("KILL app")).command).toBe("KILL");
    const err = await errorOf(old.query("SELECT 1"));
    expect(err.message).toMatch(/database removed|Connection terminated|not queryable/);
    expect((await row(admin, "DATABASES", "name", "app")).paused).toBe("1");
    expect((await show(admin, "SERVERS")).filter((r) => r.database === "app")).toEqual([]);

    const next = await connect(tp.url());
    const query = next.query("SELECT 2 AS two");
    expect(await stillPending(query, 300)).toBe(true);
    expect((await row(admin, "POOLS", "database", "app")).cl_waiting).toBe("1");
    await admin.query("RESUME app");
    expect((await query).rows[0].two).toBe(2);
    await next.end();
  });

  it("RECONNECT marks busy servers close_needed; WAIT_CLOSE returns once they are replaced", async () => {
    const holder = await connect(tp.url(), { application_name: "holder" });
    await holder.query("BEGIN");
    const { ptr } = await row(admin, "CLIENTS", "application_name", "holder");
    await admin.query("RECONNECT app");
    expect((await row(admin, "SERVERS", "link", ptr!)).close_needed).toBe("1");
    const waitClose = admin.query("WAIT_CLOSE app");
    expect(await stillPending(waitClose, 300)).toBe(true);
    await holder.query("COMMIT");
    await waitClose;
    expect((await show(admin, "SERVERS")).filter((r) => r.close_needed === "1")).toEqual([]);
    await holder.end();
  });

  it("RELOAD reads the configuration again, and says why when it cannot", async () => {
    const env = { DATABASE_URL: inject("pgAppUrl"), LISTEN_PORT: "0", POOL_MODE: "transaction", ...baseEnv };
    tp.pooler.configLoader = () =>
      loadConfig({ env: { ...env, DEFAULT_POOL_SIZE: "9", STATS_PERIOD: "30" } });
    expect((await admin.query("RELOAD")).command).toBe("RELOAD");
    expect((await row(admin, "CONFIG", "key", "default_pool_size")).value).toBe("9");
    expect((await row(admin, "CONFIG", "key", "stats_period")).value).toBe("30");
    expect((await row(admin, "DATABASES", "name", "app")).pool_size).toBe("9");

    tp.pooler.configLoader = () => loadConfig({ env: { ...env, POOL_MODE: "sometimes" } });
    const failed = await errorOf(admin.query("RELOAD"));
    expect(failed.code).toBe("F0000");
    expect(failed.message).toContain(
      "RELOAD failed: POOL_MODE: expected one of session, transaction, statement",
    );
    expect((await row(admin, "CONFIG", "key", "pool_mode")).value).toBe("transaction");

    tp.pooler.configLoader = () => loadConfig({ env });
    await admin.query("RELOAD");
  });

  it("RELOAD moves a changed [databases] entry's pool to its new target and drops a removed entry's clients, as PgBouncer", async () => {
    const server = new URL(inject("pgAppUrl"));
    const ini = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-reload-")), "pgbouncer.ini");
    const writeIni = (databases: Record<string, string>): void =>
      fs.writeFileSync(
        ini,
        [
          "[databases]",
          ...Object.entries(databases).map(
            ([name, dbname]) => `${name} = host=${server.hostname} port=${server.port} dbname=${dbname}`,
          ),
          "[pgbouncer]",
        ].join("\n"),
      );
    const currentDb = async (c: pg.Client): Promise<string> =>
      (await c.query("SELECT current_database() AS db")).rows[0].db;
    writeIni({ moving: "app", gone: "app" });
    const p = await startTestPooler(baseEnv, ini);
    const moving = await connect(p.url("moving"));
    const gone = await connect(p.url("gone"));
    const goneError = new Promise<Error & { code?: string }>((resolve) => gone.once("error", resolve));
    const reloader = await connect(consoleUrl(p));
    try {
      expect(await currentDb(moving)).toBe("app");
      expect(await currentDb(gone)).toBe("app");
      writeIni({ moving: "postgres" });
      await reloader.query("RELOAD");
      // the same client's next transaction, and a new client, reach what the entry now says
      expect(await currentDb(moving)).toBe("postgres");
      const fresh = await connect(p.url("moving"));
      expect(await currentDb(fresh)).toBe("postgres");
      await fresh.end();
      const err = await goneError;
      expect([err.code, err.message]).toEqual(["57P01", "database removed"]);
      expect((await show(reloader, "DATABASES")).map((r) => r.name)).not.toContain("gone");
      expect((await errorOf(connect(p.url("gone")))).message).toBe("no such database: gone");
    } finally {
      await Promise.all([moving.end(), reloader.end(), gone.end().catch(() => undefined)]);
      await p.stop();
    }
  });

  it("RELOAD also moves a server still logging in, and refuses a client still authenticating to a removed entry", async () => {
    const server = new URL(inject("pgAppUrl"));
    // PostgreSQL behind a proxy that connects 700 ms late: a server login stays in flight that long
    const slow = net.createServer((c) => {
      c.pause();
      setTimeout(() => {
        const up = net.connect({ host: server.hostname, port: Number(server.port) }, () => {
          c.pipe(up).pipe(c);
          c.resume();
        });
        up.on("error", () => c.destroy());
        c.on("error", () => up.destroy());
      }, 700);
    });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    const slowPort = (slow.address() as net.AddressInfo).port;
    const ini = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-reload-")), "pgbouncer.ini");
    const writeIni = (lines: string[]): void =>
      fs.writeFileSync(ini, ["[databases]", ...lines, "[pgbouncer]"].join("\n"));
    writeIni([
      `slow = host=127.0.0.1 port=${slowPort} dbname=app`,
      `gone = host=${server.hostname} port=${server.port} dbname=app`,
    ]);
    const p = await startTestPooler(baseEnv, ini);
    const reloader = await connect(consoleUrl(p));
    try {
      // the first client's login waits for the pool's first server, which is still logging in
      const first = connect(p.url("slow"));
      await new Promise((r) => setTimeout(r, 200));
      expect((await show(reloader, "SERVERS")).filter((r) => r.database === "slow")).toHaveLength(1);
      writeIni([
        `slow = host=127.0.0.1 port=${slowPort} dbname=postgres`,
        `gone = host=${server.hostname} port=${server.port} dbname=app`,
      ]);
      await reloader.query("RELOAD");
      const c = await first;
      expect((await c.query("SELECT current_database() AS db")).rows[0].db).toBe("postgres");
      await c.end();

      // a client that sent its startup packet for "gone" and is asked for its password when RELOAD drops it
      writeIni([`slow = host=127.0.0.1 port=${slowPort} dbname=postgres`]);
      const refused = await RawClient.connect(p.url("gone"), {}, () => reloader.query("RELOAD")).then(
        () => "logged in",
        (err: Error) => err.message,
      );
      expect(refused).toBe("login failed: database removed");
    } finally {
      await reloader.end();
      await p.stop();
      slow.close();
    }
  });

  it("stops reading a client that pipelines queries without reading the answers, then answers them all in order", async () => {
    /** A write that has not drained this long means the pooler stopped reading. */
    const STUCK_MS = 1000;
    const MiB = 1 << 20;
    const ATTEMPT = 128 * MiB;
    const configRows = (await show(admin, "CONFIG")).length;
    const raw = await RawClient.connect(consoleUrl(tp));
    const sock = raw.release();
    sock.pause();
    // CONFIG (many rows) and VERSION (one) alternate, so the answers show their order; the padding
    // (allowed by the grammar) fills the socket buffers with thousands of queries, not millions
    const pad = " ".repeat(8192);
    const pair = Buffer.concat([query(`SHOW CONFIG;${pad}`), query(`SHOW VERSION;${pad}`)]);
    const batch = Buffer.concat(Array.from({ length: 64 }, () => pair));
    let pairs = 0;
    let waiting: Promise<boolean> | undefined;
    while (waiting === undefined && pairs * pair.length < ATTEMPT) {
      const written = raw.write(batch);
      pairs += 64;
      if (await stillPending(written, STUCK_MS)) waiting = written;
    }
    const sent = `${pairs * 2} queries (${((pairs * pair.length) / MiB).toFixed(1)} MiB)`;
    const outcome = waiting ? "then the pooler stopped reading" : "and the pooler still read";
    console.log(`admin console, client not reading: ${sent} sent, ${outcome}`);
    expect(waiting, `the pooler still read after ${sent}`).toBeDefined();

    const rowsPerAnswer: number[] = [];
    let rows = 0;
    let shape = "";
    let buf = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      sock.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 5 && buf.length >= 1 + buf.readUInt32BE(1)) {
          const type = String.fromCharCode(buf[0]!);
          buf = buf.subarray(1 + buf.readUInt32BE(1));
          if (type === "D") rows++;
          else shape += type;
          if (type !== "Z") continue;
          rowsPerAnswer.push(rows);
          rows = 0;
          if (rowsPerAnswer.length === pairs * 2) resolve();
        }
      });
    });
    sock.resume();
    await waiting;
    await done;
    expect(shape).toBe("TCZ".repeat(pairs * 2));
    expect(rowsPerAnswer).toEqual(
      Array.from({ length: pairs * 2 }, (_, i) => (i % 2 === 0 ? configRows : 1)),
    );
    sock.destroy();
  }, 60_000);
});

/** `*` for the test server, and `gone`: its database app. */
function autodbEntries(): { gone: string; "*": string } {
  const server = new URL(inject("pgAppUrl"));
  const star = `host=${server.hostname} port=${server.port}`;
  return { gone: `${star} dbname=app`, "*": star };
}

/**
 * A client of `gone` (autodbEntries), then a RELOAD whose [databases] keep only `*`: whether the
 * client is closed or still open, and what a new client of `gone` is told.
 */
async function removedUnderAutodb(
  url: (db: string) => string,
  setDatabases: (databases: Record<string, string>) => void,
): Promise<{ client: string; fresh: string }> {
  const reloader = await connect(url("pgbouncer"));
  const gone = await connect(url("gone"));
  const closed = new Promise<string>((resolve) => gone.once("end", () => resolve("closed")));
  try {
    await gone.query("SELECT 1");
    setDatabases({ "*": autodbEntries()["*"] });
    await reloader.query("RELOAD");
    const client = await Promise.race([closed, sleep(2000).then(() => "open")]);
    const fresh = await connect(url("gone")).then(
      (c) => c.end().then(() => "logged in"),
      (err: Error) => err.message,
    );
    return { client, fresh };
  } finally {
    await Promise.all([reloader.end(), gone.end().catch(() => undefined)]);
  }
}

/**
 * A client of `gone` held after its startup packet, before it answers the password request, while
 * a RELOAD keeps only `*`: whether it is refused (and how) or logs in.
 */
async function removedMidLogin(
  url: (db: string) => string,
  setDatabases: (databases: Record<string, string>) => void,
): Promise<string> {
  const reloader = await connect(url("pgbouncer"));
  try {
    const reload = async (): Promise<void> => {
      setDatabases({ "*": autodbEntries()["*"] });
      await reloader.query("RELOAD");
    };
    const client = await RawClient.connect(url("gone"), {}, reload).catch((err: Error) => err);
    if (client instanceof Error) return client.message;
    await client.close();
    return "logged in";
  } finally {
    await reloader.end();
  }
}

/**
 * `gone` (autodbEntries) disabled, then paused, each time removed by a RELOAD that keeps `*`: what
 * a new client of `gone` meets then (a hang: it waits for a RESUME).
 */
async function flagsAfterRemoval(
  url: (db: string) => string,
  setDatabases: (databases: Record<string, string>) => void,
): Promise<Record<string, string>> {
  const admin = await connect(url("pgbouncer"));
  const seen: Record<string, string> = {};
  try {
    for (const [flag, undo] of [
      ["DISABLE gone", "ENABLE gone"],
      ["PAUSE gone", "RESUME gone"],
    ] as const) {
      setDatabases(autodbEntries());
      await admin.query("RELOAD");
      await admin.query(flag);
      setDatabases({ "*": autodbEntries()["*"] });
      await admin.query("RELOAD");
      const login = connect(url("gone")).then(
        (c) => c.end().then(() => "logged in"),
        (err: Error) => err.message.replace(/^server login failed: /, "").replace(/;.*/, ""),
      );
      seen[flag] = await Promise.race([login, sleep(2000).then(() => "hung")]);
      await admin.query(undo).catch(() => undefined);
      await login;
    }
    return seen;
  } finally {
    await admin.end();
  }
}

/** The role `c` runs its queries as. */
async function currentUser(c: pg.Client): Promise<string> {
  return (await c.query("SELECT current_user AS u")).rows[0].u;
}

/**
 * Clients of `forced` (forcedEntry as reload_alice), one between transactions and one inside one,
 * then a RELOAD that forces reload_bob: whom each runs as next, and a new client, and the servers' users.
 */
async function forcedUserChanged(
  url: (db: string) => string,
  setDatabases: (dbs: Record<string, string>) => void,
): Promise<Record<string, unknown>> {
  const who = currentUser;
  const between = await connect(url("forced"));
  const inTx = await connect(url("forced"));
  const admin = await connect(url("pgbouncer"));
  try {
    await inTx.query("BEGIN");
    const before = [await who(between), await who(inTx)];
    setDatabases(forcedEntry("reload_bob", "bob-pw"));
    await admin.query("RELOAD");
    const seen = { before, between: await who(between), inTx: await who(inTx) };
    await inTx.query("COMMIT");
    const fresh = await connect(url("forced"));
    const after = { afterCommit: await who(inTx), fresh: await who(fresh) };
    await fresh.end();
    const servers = (await show(admin, "SERVERS")).filter((r) => r.database === "forced");
    return { ...seen, ...after, serverUsers: [...new Set(servers.map((r) => r.user))] };
  } finally {
    await Promise.all([between.end(), inTx.end(), admin.end()]);
  }
}

describe("RELOAD that changes an entry's forced user=", () => {
  const expected = {
    transaction: {
      before: ["reload_alice", "reload_alice"],
      between: "reload_bob",
      // its server logged in as reload_alice serves on to its transaction's end, and is closed then
      inTx: "reload_alice",
      afterCommit: "reload_bob",
      fresh: "reload_bob",
      serverUsers: ["reload_bob"],
    },
    // a client keeps the server it has, so its login, until it leaves; new ones run as reload_bob
    session: {
      before: ["reload_alice", "reload_alice"],
      between: "reload_alice",
      inTx: "reload_alice",
      afterCommit: "reload_alice",
      fresh: "reload_bob",
      // SHOW SERVERS names the pool's user, renamed, though the old servers logged in as reload_alice
      serverUsers: ["reload_bob"],
    },
  };

  beforeAll(async () => {
    await createLoginRole(inject("pgAppUrl"), "reload_alice", "alice-pw", "md5");
    await createLoginRole(inject("pgAppUrl"), "reload_bob", "bob-pw", "md5");
  });

  describe.each(["transaction", "session"] as const)("in %s pooling", (mode) => {
    it("moves the entry's pool and its connected clients to the new login", async () => {
      const { ini, setDatabases } = iniOf(forcedEntry("reload_alice", "alice-pw"));
      const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "", POOL_MODE: mode }, ini);
      try {
        expect(await forcedUserChanged(p.url, setDatabases)).toEqual(expected[mode]);
      } finally {
        await p.stop();
      }
    });

    it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does", async () => {
      const b = await startPgBouncer(forcedEntry("reload_alice", "alice-pw"), {
        admin_users: "postgres",
        pool_mode: mode,
      });
      try {
        expect(await forcedUserChanged(b.url, b.setDatabases)).toEqual(expected[mode]);
      } finally {
        await b.stop();
      }
    });
  });
});

/**
 * A client of `forced` (unforcedEntry) as postgres, then a RELOAD forcing reload_alice and a client of
 * hers, then one forcing postgres, whose pool is there already: whom each runs as, SHOW POOLS' rows of
 * `forced` (user, cl_active), and what a new client is told of its login.
 */
async function forcedUserTaken(
  url: (db: string) => string,
  setDatabases: (dbs: Record<string, string>) => void,
): Promise<Record<string, unknown>> {
  const unforced = await connect(url("forced"));
  const admin = await connect(url("pgbouncer"));
  let alice: pg.Client | undefined;
  try {
    setDatabases(forcedEntry("reload_alice", "alice-pw"));
    await admin.query("RELOAD");
    alice = await connect(url("forced"));
    const before = [await currentUser(unforced), await currentUser(alice)];
    setDatabases(forcedEntry("postgres", "postgres"));
    await admin.query("RELOAD");
    const after = [await currentUser(unforced), await currentUser(alice)];
    const pools = (await admin.query("SHOW POOLS")).rows
      .filter((r) => r.database === "forced")
      .map((r) => [r.user, r.cl_active]);
    const fresh = await RawClient.connect(url("forced"));
    await fresh.close();
    const told = fresh.parameters.filter(([name]) =>
      ["session_authorization", "is_superuser"].includes(name),
    );
    return { before, after, pools, told: Object.fromEntries(told) };
  } finally {
    await Promise.all([unforced.end(), admin.end(), alice?.end()]);
  }
}

describe("RELOAD that forces a user whose pool of the entry is there already", () => {
  const expected = {
    before: ["postgres", "reload_alice"],
    // the client logged in before anyone was forced keeps its pool; reload_alice's is renamed
    after: ["postgres", "postgres"],
    // two pools of forced and postgres: PgBouncer's forced user is an object of its own, renamed
    pools: [
      ["postgres", 1],
      ["postgres", 1],
    ],
    told: { session_authorization: "postgres", is_superuser: "on" },
  };

  beforeAll(() => createLoginRole(inject("pgAppUrl"), "reload_alice", "alice-pw", "md5"));

  it("moves the entry's forced pool to the new login all the same", async () => {
    const { ini, setDatabases } = iniOf(unforcedEntry());
    const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "" }, ini);
    try {
      expect(await forcedUserTaken(p.url, setDatabases)).toEqual(expected);
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does", async () => {
    const b = await startPgBouncer(unforcedEntry(), { admin_users: "postgres", pool_mode: "transaction" });
    try {
      expect(await forcedUserTaken(b.url, b.setDatabases)).toEqual(expected);
    } finally {
      await b.stop();
    }
  });
});

/** PgBouncer 1.18's warning when a RELOAD drops an entry's user= (its loader.c). */
const FORCED_USER_KEPT = "losing forced user not supported, keeping old setting";

/** Long enough for PgBouncer's janitor (every third of a second) to close servers marked to close. */
const JANITOR_MS = 600;

/** SHOW POOLS' sv_idle of `database` and `user`, once the janitor has had its turn. */
async function idleServersOf(admin: pg.Client, user: string, database = "forced"): Promise<number> {
  await sleep(JANITOR_MS);
  return Number(
    (await show(admin, "POOLS")).find((r) => r.database === database && r.user === user)?.sv_idle,
  );
}

/**
 * Clients of `forced` (forcedEntry as reload_alice), one idle and one inside a transaction, then a
 * RELOAD whose entry names no user=, then another, the file unchanged: whom each runs as, the
 * warnings, SHOW DATABASES' force_user, and the idle servers left once the first RELOAD's
 * transaction ended and after the second RELOAD (0: replaced).
 */
async function forcedUserRemoved(
  url: (db: string) => string,
  setDatabases: (dbs: Record<string, string>) => void,
  warnings: () => number,
): Promise<Record<string, unknown>> {
  const between = await connect(url("forced"));
  const inTx = await connect(url("forced"));
  const admin = await connect(url("pgbouncer"));
  let fresh: pg.Client | undefined;
  try {
    await inTx.query("BEGIN");
    await between.query("SELECT 1");
    setDatabases(unforcedEntry());
    await admin.query("RELOAD");
    const inTxUser = await currentUser(inTx);
    await inTx.query("COMMIT");
    const idleAfterCommit = await idleServersOf(admin, "reload_alice");
    fresh = await connect(url("forced"));
    const users = [inTxUser, await currentUser(between), await currentUser(fresh)];
    const forceUser = (await row(admin, "DATABASES", "name", "forced")).force_user;
    await admin.query("RELOAD");
    return {
      users,
      forceUser,
      idleAfterCommit,
      idleAfterSecondReload: await idleServersOf(admin, "reload_alice"),
      warnings: warnings(),
    };
  } finally {
    await Promise.all([between.end(), inTx.end(), admin.end(), fresh?.end()]);
  }
}

describe("RELOAD that removes an entry's forced user=", () => {
  const expected = {
    // the forced user is kept: its clients, and new ones, run as it still, none as themselves
    users: ["reload_alice", "reload_alice", "reload_alice"],
    forceUser: "reload_alice",
    // but the entry changed: its servers are replaced, the idle one and the busy one once free
    idleAfterCommit: 0,
    // the file unchanged, the second RELOAD keeps the server opened since (PgBouncer's replaces it again)
    idleAfterSecondReload: 1,
    warnings: 2,
  };

  beforeAll(() => createLoginRole(inject("pgAppUrl"), "reload_alice", "alice-pw", "md5"));

  it("keeps it, with PgBouncer's warning, and replaces the entry's servers once", async () => {
    const { ini, setDatabases } = iniOf(forcedEntry("reload_alice", "alice-pw"));
    const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "" }, ini);
    try {
      const warnings = (): number => p.logs.filter((l) => l.msg === FORCED_USER_KEPT).length;
      expect(await forcedUserRemoved(p.url, setDatabases, warnings)).toEqual(expected);
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does, but for the second RELOAD", async () => {
    const b = await startPgBouncer(forcedEntry("reload_alice", "alice-pw"), {
      admin_users: "postgres",
      pool_mode: "transaction",
    });
    try {
      const warnings = (): number => b.log().split(`WARNING ${FORCED_USER_KEPT}`).length - 1;
      expect(await forcedUserRemoved(b.url, b.setDatabases, warnings)).toEqual({
        ...expected,
        idleAfterSecondReload: 0,
      });
    } finally {
      await b.stop();
    }
  });
});

/**
 * A client of app, made up from "*" (autodbEntry forcing reload_alice), then a RELOAD whose "*" names
 * no user=, then another, the file unchanged: whom the first client, a new one of app, one of the
 * postgres database (made up after the RELOAD) and, after the second RELOAD, new ones of both run
 * as; app's idle servers once the janitor has had its turn (0: replaced); the warnings.
 */
async function autodbForcedUserRemoved(
  url: (db: string) => string,
  setDatabases: (dbs: Record<string, string>) => void,
  warnings: () => number,
): Promise<Record<string, unknown>> {
  const admin = await connect(url("pgbouncer"));
  const held = await connect(url("app"));
  try {
    await held.query("SELECT 1");
    setDatabases(autodbEntry());
    await admin.query("RELOAD");
    const idleAfterReload = await idleServersOf(admin, "reload_alice", "app");
    const users = [await currentUser(held), await whoAmI(url("app")), await whoAmI(url("postgres"))];
    await admin.query("RELOAD");
    const afterSecondReload = [await whoAmI(url("app")), await whoAmI(url("postgres"))];
    return { users, idleAfterReload, afterSecondReload, warnings: warnings() };
  } finally {
    await Promise.all([held.end(), admin.end()]);
  }
}

describe('RELOAD that removes the forced user= of "*"', () => {
  const expected = {
    // PgBouncer's "*" is a connection string each database was made up from: those made up already
    // keep the forced user, a database made up since logs in as its client
    users: ["reload_alice", "reload_alice", "postgres"],
    // the entry app was made from changed: its servers are replaced
    idleAfterReload: 0,
    afterSecondReload: ["reload_alice", "postgres"],
    // one for app; none for "*", which is no database
    warnings: 1,
  };
  const alice = " user=reload_alice password=alice-pw";

  beforeAll(() => createLoginRole(inject("pgAppUrl"), "reload_alice", "alice-pw", "md5"));

  it("keeps it for the databases made up already, not for those made up since", async () => {
    const { ini, setDatabases } = iniOf(autodbEntry(alice));
    const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "" }, ini);
    try {
      const warnings = (): number => p.logs.filter((l) => l.msg === FORCED_USER_KEPT).length;
      expect(await autodbForcedUserRemoved(p.url, setDatabases, warnings)).toEqual(expected);
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does", async () => {
    const b = await startPgBouncer(autodbEntry(alice), { admin_users: "postgres", pool_mode: "transaction" });
    try {
      const warnings = (): number => b.log().split(`WARNING ${FORCED_USER_KEPT}`).length - 1;
      expect(await autodbForcedUserRemoved(b.url, b.setDatabases, warnings)).toEqual(expected);
    } finally {
      await b.stop();
    }
  });
});

/**
 * The idle servers of the pool `between` and `inTx` (clients of `forced`) use once a RELOAD to
 * `entry` happened during inTx's transaction and it has ended: 2 if the RELOAD kept them, 0 if it
 * replaced them.
 */
async function idleAfterReload(
  admin: pg.Client,
  clients: { between: pg.Client; inTx: pg.Client },
  reload: () => void,
): Promise<number> {
  await clients.inTx.query("BEGIN");
  await clients.between.query("SELECT 1");
  const user = await currentUser(clients.inTx);
  reload();
  await admin.query("RELOAD");
  await clients.inTx.query("COMMIT");
  return idleServersOf(admin, user);
}

/**
 * RELOADs of `forced` (unforcedEntry) with clients of it: a pool_size, then a forced user=, beside
 * the pool of postgres's own logins, then (its clients now reload_alice's) a password alone, one
 * PostgreSQL does not take: how many idle servers each left its clients' pool.
 */
async function serversKeptByReload(
  url: (db: string) => string,
  setDatabases: (dbs: Record<string, string>) => void,
): Promise<Record<string, number>> {
  const admin = await connect(url("pgbouncer"));
  const own = { between: await connect(url("forced")), inTx: await connect(url("forced")) };
  let forced: { between: pg.Client; inTx: pg.Client } | undefined;
  const alice = forcedEntry("reload_alice", "alice-pw");
  try {
    const poolSize = await idleAfterReload(admin, own, () =>
      setDatabases({ forced: `${unforcedEntry().forced} pool_size=7` }),
    );
    const forcedUser = await idleAfterReload(admin, own, () => setDatabases(alice));
    forced = { between: await connect(url("forced")), inTx: await connect(url("forced")) };
    const password = await idleAfterReload(admin, forced, () =>
      setDatabases({ forced: alice.forced.replace("alice-pw", "not-alice-pw") }),
    );
    return { poolSize, forcedUser, password };
  } finally {
    const clients = [own, forced].flatMap((c) => (c ? [c.between, c.inTx] : []));
    await Promise.all([admin.end(), ...clients.map((c) => c.end())]);
  }
}

describe("RELOAD that changes an entry", () => {
  // a forced user= replaces every pool's servers, the pool of another login's too; a password or a
  // pool size alone none: its servers are logged in already
  const expected = { poolSize: 2, forcedUser: 0, password: 2 };

  beforeAll(() => createLoginRole(inject("pgAppUrl"), "reload_alice", "alice-pw", "md5"));

  it("replaces the servers of every pool of it when a forced user= comes, not for a password", async () => {
    const { ini, setDatabases } = iniOf(unforcedEntry());
    const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "" }, ini);
    try {
      expect(await serversKeptByReload(p.url, setDatabases)).toEqual(expected);
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does", async () => {
    const b = await startPgBouncer(unforcedEntry(), { admin_users: "postgres", pool_mode: "transaction" });
    try {
      expect(await serversKeptByReload(b.url, b.setDatabases)).toEqual(expected);
    } finally {
      await b.stop();
    }
  });
});

describe("RELOAD that removes an entry while `*` stays", () => {
  // the new client of gone reaches PostgreSQL's own database gone, which does not exist
  const expected = {
    client: "closed",
    fresh: 'database "gone" does not exist',
    midLogin: "login failed: database removed",
    // its DISABLE and PAUSE went with it: the made-up database of its name is neither
    flags: {
      "DISABLE gone": 'database "gone" does not exist',
      "PAUSE gone": 'database "gone" does not exist',
    },
  };

  it("closes the entry's clients rather than moving them to an auto-database of the same name", async () => {
    const { ini, setDatabases } = iniOf(autodbEntries());
    const p = await startTestPooler({ ...baseEnv, DATABASE_URL: "" }, ini);
    try {
      const seen = await removedUnderAutodb(p.url, setDatabases);
      setDatabases(autodbEntries());
      await psql(p.url("pgbouncer"), "RELOAD");
      const midLogin = await removedMidLogin(p.url, setDatabases);
      const flags = await flagsAfterRemoval(p.url, setDatabases);
      expect({
        ...seen,
        fresh: seen.fresh.replace(/^server login failed: /, "").replace(/;.*/, ""),
        midLogin,
        flags,
      }).toEqual(expected);
    } finally {
      await p.stop();
    }
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 does", async () => {
    const b = await startPgBouncer(autodbEntries(), { admin_users: "postgres" });
    try {
      const seen = await removedUnderAutodb(b.url, b.setDatabases);
      b.setDatabases(autodbEntries());
      await psql(b.url("pgbouncer"), "RELOAD");
      // but its client still logging in never hears back after its password (its pool freed under
      // it, it is in no SHOW CLIENTS): ours is refused as the entry's other clients are
      const midLogin = await removedMidLogin(b.url, b.setDatabases);
      const flags = await flagsAfterRemoval(b.url, b.setDatabases);
      expect({ ...seen, midLogin, flags }).toEqual({
        ...expected,
        midLogin: "no reply in time",
      });
    } finally {
      await b.stop();
    }
  });
});

describe("SHOW POOLS while a client logs in", () => {
  it("counts a client queued for a server to take its startup settings as waiting, not against cl_active", async () => {
    const tp = await startTestPooler({ ...baseEnv, DEFAULT_POOL_SIZE: "1" });
    const admin = await connect(consoleUrl(tp));
    const holder = await connect(tp.url());
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1");
      // The only server is busy: this login waits for it to accept statement_timeout.
      const late = connect(tp.url(), { options: "-c statement_timeout=5s" });
      await eventually(async () => (await row(admin, "POOLS", "database", "app")).cl_waiting === "1");
      expect(await row(admin, "POOLS", "database", "app")).toMatchObject({ cl_active: "1", cl_waiting: "1" });
      await holder.query("COMMIT");
      await (await late).end();
    } finally {
      await holder.end();
      await admin.end();
      await tp.stop();
    }
  });
});

describe("PAUSE and RESUME under pgbench load", () => {
  let tp: TestPooler;
  let admin: pg.Client;
  let script: string;

  beforeAll(async () => {
    tp = await startTestPooler(baseEnv);
    admin = await connect(consoleUrl(tp));
    script = path.join(authDir, "xact.sql");
    fs.writeFileSync(script, "BEGIN;\nSELECT pg_sleep(0.002);\nEND;\n");
  });

  afterAll(async () => {
    await admin.end();
    await tp.stop();
  });

  /** Transactions of the app database so far (0 before its pool exists). */
  const xacts = async (): Promise<number> =>
    Number((await show(admin, "STATS_TOTALS")).find((r) => r.database === "app")?.xact_count ?? 0);

  it("clients wait while paused, nothing fails, traffic resumes", async () => {
    const bench = pgbench(tp.url(), ["-n", "-c", "8", "-T", "6", "-f", script]);
    await eventually(async () => (await xacts()) > 50);

    const pause = await admin.query("PAUSE");
    expect(pause.command).toBe("PAUSE");
    // PAUSE returns once every server is released and closed
    expect((await show(admin, "SERVERS")).filter((r) => r.database === "app")).toEqual([]);
    expect((await show(admin, "STATE")).find((r) => r.key === "paused")!.value).toBe("yes");
    await eventually(async () => (await row(admin, "POOLS", "database", "app")).cl_waiting === "8");
    const pool = await row(admin, "POOLS", "database", "app");
    expect(pool).toMatchObject({ sv_active: "0", sv_idle: "0", sv_login: "0" });
    expect(Number(pool.maxwait) * 1e6 + Number(pool.maxwait_us)).toBeGreaterThan(0);

    const frozen = await xacts();
    await sleep(700);
    expect(await xacts()).toBe(frozen);

    expect((await admin.query("RESUME")).command).toBe("RESUME");
    await eventually(async () => (await xacts()) > frozen + 50);
    const result = await bench;
    expect(result.output).not.toMatch(/error|abort/i);
    expect(result.failed).toBe(0);
    expect(result.processed).toBeGreaterThan(frozen);
  });

  it("PAUSE db pauses that database (SHOW DATABASES, not SHOW STATE) until RESUME db", async () => {
    await admin.query("PAUSE app");
    expect((await row(admin, "DATABASES", "name", "app")).paused).toBe("1");
    expect((await show(admin, "STATE")).find((r) => r.key === "paused")!.value).toBe("no");
    const client = await connect(tp.url());
    const query = client.query("SELECT 1 AS one");
    expect(await stillPending(query, 300)).toBe(true);
    await admin.query("RESUME app");
    expect((await query).rows[0].one).toBe(1);
    await client.end();
  });

  it("a cancel of a PAUSE that waits (psql's Ctrl-C) resumes, as PgBouncer", async () => {
    const holder = await connect(tp.url());
    const pausing = await connect(consoleUrl(tp));
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1");
      const pause = errorOf(pausing.query("PAUSE"));
      await eventually(async () => (await row(admin, "STATE", "key", "paused")).value === "yes");
      const { pid, secret } = cancelKeyOf(pausing);
      await rawExchange(tp.port, cancelRequest(pid, secret));
      expect((await pause).code).toBe("57014");
      expect((await row(admin, "STATE", "key", "paused")).value).toBe("no");
      const late = await connect(tp.url());
      expect((await late.query("SELECT 1 AS one")).rows[0].one).toBe(1);
      await late.end();
      await holder.query("COMMIT");
    } finally {
      await Promise.all([holder.end(), pausing.end()]);
    }
  });

  it("PAUSE waits for a pinned client to leave, as PgBouncer's session mode waits for its clients", async () => {
    const pinned = await connect(tp.url());
    await pinned.query("LISTEN pause_test"); // pins its server across transactions
    const pause = admin.query("PAUSE app");
    expect(await stillPending(pause, 500)).toBe(true);
    await pinned.end();
    await pause;
    expect((await show(admin, "SERVERS")).filter((r) => r.database === "app")).toEqual([]);
    await admin.query("RESUME app");
  });
});

describe("who may use the console", () => {
  let tp: TestPooler;

  beforeAll(async () => {
    tp = await startTestPooler(baseEnv);
  });

  afterAll(() => tp.stop());

  it("stats_users may SHOW but not control", async () => {
    const stats = await connect(consoleUrl(tp, "stats_reader", "stats-secret"));
    expect((await stats.query("SHOW POOLS")).rows.length).toBeGreaterThan(0);
    expect((await stats.query("SHOW STATS")).rows.length).toBeGreaterThan(0);
    for (const command of [
      "PAUSE",
      "RESUME",
      "RELOAD",
      "KILL app",
      "KILL_CLIENT 1",
      "DISABLE app",
      "ENABLE app",
      "RECONNECT",
      "WAIT_CLOSE",
      "SET default_pool_size = 1",
      "SHUTDOWN",
      "SHUTDOWN WAIT_FOR_CLIENTS",
    ]) {
      // PgBouncer's words and SQLSTATE (measured with PgBouncer 1.18; 1.25's admin_error is the same).
      const err = await errorOf(stats.query(command));
      expect(err.message, command).toBe("admin access needed");
      expect(err.code, command).toBe("08P01");
    }
    // a command of the wrong form is invalid before it needs admin access (PgBouncer 1.18 measured)
    for (const command of ["RELOAD app", "SHUTDOWN app", "KILL_CLIENT"]) {
      expect((await errorOf(stats.query(command))).message, command).toBe(
        `invalid command '${command}', use SHOW HELP;`,
      );
    }
    expect((await stats.query("SHOW CONFIG")).rows.find((r) => r.key === "default_pool_size")?.value).toBe(
      "20",
    );
    expect((await stats.query("SHOW STATE")).rows[0]).toEqual({ key: "active", value: "yes" });
    await stats.end();
  });

  it("users in neither list cannot log in to the console, but may use databases", async () => {
    const err = await errorOf(connect(consoleUrl(tp, "outsider", "outsider-secret")));
    expect(err.code).toBe("08P01"); // PgBouncer's FATAL for this
    expect(err.message).toBe("not allowed");
  });

  it("a wrong password is refused before anything else", async () => {
    const err = await errorOf(connect(consoleUrl(tp, "postgres", "wrong")));
    expect(err.code).toBe("28P01");
  });
});

describe("SHUTDOWN", () => {
  it("WAIT_FOR_CLIENTS stops accepting and exits once the last client leaves", async () => {
    const tp = await startTestPooler(baseEnv);
    const client = await connect(tp.url());
    const admin = await connect(consoleUrl(tp));
    expect((await admin.query("SHUTDOWN WAIT_FOR_CLIENTS")).command).toBe("SHUTDOWN");
    await sleep(100);
    expect((await errorOf(connect(tp.url()))).message).toMatch(/ECONNREFUSED|shutting down/);
    expect((await client.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    expect(await stillPending(tp.pooler.stopped, 200)).toBe(true);
    await client.end();
    await tp.pooler.stopped;
    await admin.end().catch(() => undefined);
  });

  // a session client keeps its server between transactions: the pause that holds the others back does not
  it.each(["transaction", "session"])(
    "WAIT_FOR_SERVERS in %s pooling lets the running transaction finish and starts no other one",
    async (mode) => {
      const tp = await startTestPooler({ ...baseEnv, POOL_MODE: mode });
      const client = await connect(tp.url());
      const admin = await connect(consoleUrl(tp));
      admin.on("error", () => undefined);
      let shutdownSent = false;
      let doneAfter = 0;
      // a busy client: each query goes out as soon as the one before is answered
      const refusal = fatalDuring(
        client,
        (async () => {
          for (;;) {
            await client.query("SELECT pg_sleep(0.2)");
            if (shutdownSent) doneAfter++;
          }
        })(),
      );
      client.on("error", () => undefined);
      await sleep(300);
      shutdownSent = true;
      expect((await admin.query("SHUTDOWN WAIT_FOR_SERVERS")).command).toBe("SHUTDOWN");
      expect(await stillPending(tp.pooler.stopped, 3000)).toBe(false);
      const refused = await refusal;
      expect([refused.code, refused.message]).toEqual(["57P01", "pooler is shutting down"]);
      // the query running at SHUTDOWN finished; the next one was refused, not started
      expect(doneAfter).toBe(1);
      await admin.end().catch(() => undefined);
    },
  );

  it("a console session stays open while a graceful shutdown waits for a transaction, as PgBouncer's SIGINT", async () => {
    const tp = await startTestPooler(baseEnv);
    const client = await connect(tp.url());
    const admin = await connect(consoleUrl(tp));
    // both are told 57P01 at the end
    for (const c of [client, admin]) c.on("error", () => undefined);
    await client.query("BEGIN");
    const stopping = tp.pooler.shutdown(10_000);
    await sleep(200);
    const clients = await admin.query("SHOW CLIENTS");
    expect(clients.rows.filter((r) => r.database === "app").map((r) => r.state)).toEqual(["active"]);
    await client.query("COMMIT");
    await stopping;
    await Promise.allSettled([client.end(), admin.end()]);
  });

  it("SHUTDOWN during a SHUTDOWN WAIT_FOR_CLIENTS ends it at once, as PgBouncer's", async () => {
    const tp = await startTestPooler(baseEnv);
    const client = await connect(tp.url());
    const admin = await connect(consoleUrl(tp));
    for (const c of [client, admin]) c.on("error", () => undefined);
    await admin.query("SHUTDOWN WAIT_FOR_CLIENTS");
    expect(await stillPending(tp.pooler.stopped, 200)).toBe(true);
    expect((await admin.query("SHUTDOWN")).command).toBe("SHUTDOWN");
    expect(await stillPending(tp.pooler.stopped, 1000)).toBe(false);
    await Promise.allSettled([client.end(), admin.end()]);
  });

  it("SHUTDOWN closes everything at once", async () => {
    const tp = await startTestPooler(baseEnv);
    const admin = await connect(consoleUrl(tp));
    await admin.query("SHUTDOWN");
    await tp.pooler.stopped;
    expect(tp.logs.some((l) => l.msg === "shut down")).toBe(true);
    await admin.end().catch(() => undefined);
  });
});

describe("stats_period", () => {
  it("averages over the period and writes PgBouncer's stats line", async () => {
    const tp = await startTestPooler({ ...baseEnv, STATS_PERIOD: "1" });
    try {
      const app = await connect(tp.url());
      const started = Date.now();
      while (Date.now() - started < 1200) await app.query("SELECT 1");
      await app.end();
      await eventually(async () =>
        tp.logs.some((l) => String(l.msg).startsWith("stats: ") && !String(l.msg).startsWith("stats: 0 ")),
      );
      const line = tp.logs
        .map((l) => String(l.msg))
        .find((m) => m.startsWith("stats: ") && !m.startsWith("stats: 0 "))!;
      expect(line).toMatch(
        /^stats: \d+ xacts\/s, \d+ queries\/s, 0 client parses\/s, 0 server parses\/s, 0 binds\/s, in \d+ B\/s, out \d+ B\/s, xact \d+ us, query \d+ us, wait \d+ us$/,
      );
      const admin = await connect(consoleUrl(tp));
      const avg = await row(admin, "STATS_AVERAGES", "database", "app");
      expect(Number(avg.xact_count)).toBeGreaterThan(0);
      expect(Number(avg.bytes_received)).toBeGreaterThan(0);
      expect(Number(avg.query_time)).toBeGreaterThan(0);
      await admin.end();
    } finally {
      await tp.stop();
    }
  });
});

describe("stats_period = 0", () => {
  it("stops the stats clock instead of ticking on every turn of the event loop; SET starts it again", async () => {
    const tp = await startTestPooler({ ...baseEnv, STATS_PERIOD: "0" });
    const statsLines = (): number => tp.logs.filter((l) => String(l.msg).startsWith("stats: ")).length;
    const admin = await connect(consoleUrl(tp));
    try {
      await sleep(300);
      expect(statsLines()).toBe(0);
      await admin.query("SET stats_period = 1");
      await eventually(async () => statsLines() > 0, 3000);
    } finally {
      await admin.end();
      await tp.stop();
    }
  });
});

/**
 * Rows as PgBouncer 1.18 lists them: pool by pool (database, then user), a pool's active clients
 * before its waiting ones (in the order they began to wait), and for SHOW SOCKETS each pool's
 * servers right after its clients.
 */
async function listingOrder(url: (db: string) => string): Promise<{ clients: string[]; sockets: string[] }> {
  // x logs in first and stays idle; y takes the only server; z's query, then x's, wait for it
  const x = await connect(url("app"), { application_name: "x" });
  const y = await connect(url("app"), { application_name: "y" });
  const z = await connect(url("app"), { application_name: "z" });
  const admin = await connect(url("pgbouncer"), { application_name: "console" });
  const waitingClients = async (n: number) =>
    (await show(admin, "CLIENTS")).filter((r) => r.state === "waiting").length === n;
  await y.query("BEGIN");
  const waiting = [z.query("SELECT 1")];
  try {
    await waitFor(() => waitingClients(1), "z to wait for the server");
    // a later millisecond: the order of the waits is all that tells them apart
    await new Promise((r) => setTimeout(r, 5));
    waiting.push(x.query("SELECT 1"));
    await waitFor(() => waitingClients(2), "x to wait for the server");
    // SHOW CLIENTS' state of a client without a server is PgBouncer 1.25's idle, not 1.18's active
    const who = (r: Record<string, string | null>) => `${r.type} ${r.database} ${r.application_name}`;
    return {
      clients: (await show(admin, "CLIENTS")).map(who),
      sockets: (await show(admin, "SOCKETS")).map((r) => `${who(r)} ${r.state}`),
    };
  } finally {
    await y.query("COMMIT");
    await Promise.all(waiting);
    await Promise.all([x.end(), y.end(), z.end(), admin.end()]);
  }
}

describe("SHOW CLIENTS and SOCKETS row order", () => {
  const settings = { POOL_MODE: "transaction", DEFAULT_POOL_SIZE: "1", ADMIN_USERS: "postgres" };
  const expected = {
    clients: ["C app y", "C app z", "C app x", "C pgbouncer console"],
    sockets: [
      "C app y cl_active",
      "C app z cl_waiting",
      "C app x cl_waiting",
      "S app y sv_active",
      "C pgbouncer console cl_active",
    ],
  };

  it("is PgBouncer 1.18's: pool by pool, active clients, then waiting ones in the order they began to wait, then the pool's servers", async () => {
    expect(await withTestPooler(settings, (p) => listingOrder(p.url))).toEqual(expected);
  });

  it.skipIf(!hasPgBouncer())("is what PgBouncer 1.18 lists in the same scenario", async () => {
    const b = await startPgBouncer(
      { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
      { pool_mode: "transaction", default_pool_size: 1, admin_users: "postgres" },
    );
    try {
      expect(await listingOrder(b.url)).toEqual(expected);
    } finally {
      await b.stop();
    }
  });
});
