import { describe, expect, it } from "vitest";
import {
  ClientSession,
  NO_BASELINE,
  NO_EFFECT,
  NO_SETTINGS,
  classify,
  probeSql,
  readProbe,
  tokenize,
} from "./session-state.ts";

describe("classify", () => {
  it.each([
    "SELECT abalance FROM pgbench_accounts WHERE aid = 42",
    "UPDATE t SET x = 1 WHERE id = 2",
    "INSERT INTO temperature (v) VALUES (1)",
    "CREATE TABLE copy AS SELECT * FROM pg_temp.t",
    "SELECT * FROM pg_temp.t",
    "BEGIN",
    "COMMIT",
    "SET LOCAL statement_timeout = '1s'",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SELECT pg_advisory_xact_lock(1)",
    "DECLARE c CURSOR FOR SELECT 1",
    "SELECT name, setting FROM pg_settings WHERE source = 'session'",
  ])("sees nothing session-level in %s", (sql) => {
    expect(classify(sql)).toEqual(NO_EFFECT);
  });

  it.each([
    ["LISTEN ch", "LISTEN"],
    ["select pg_try_advisory_lock(4242)", "advisory lock"],
    ["SELECT pg_catalog.pg_advisory_lock_shared($1)", "advisory lock"],
    ["DECLARE c CURSOR WITH HOLD FOR SELECT 1", "WITH HOLD cursor"],
    ["CREATE TEMP TABLE t (x int)", "temporary table"],
    ["create global temporary table t (x int)", "temporary table"],
    ["CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "temporary table"],
    ["SELECT 1 AS x INTO TEMP t", "temporary table"],
    ["CREATE TABLE pg_temp.t (x int)", "temporary table"],
    ['create table if not exists "pg_temp".t as select 1', "temporary table"],
    ["CREATE VIEW pg_temp_3.v AS SELECT 1", "temporary table"],
    ["SELECT 1 AS x INTO pg_temp.t", "temporary table"],
    ["PREPARE q AS SELECT 1", "PREPARE"],
    ["SELECT 1; /* then */ LISTEN ch", "LISTEN"],
  ])("sees that %s creates %s", (sql, state) => {
    expect(classify(sql)).toMatchObject({ touches: true, creates: state });
  });

  it.each([
    "SET statement_timeout = '1234ms'",
    "set search_path to a, b",
    "SET SESSION work_mem = '64MB'",
    "RESET statement_timeout",
    "UNLISTEN *",
    "SELECT pg_advisory_unlock_all()",
    "SELECT pg_advisory_unlock(4242)",
    "CLOSE c",
    "DROP TABLE t",
    "CREATE TEMP TABLE t (x int) ON COMMIT DROP",
    "DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$",
    "-- a comment\nSET x.y = 1",
    "/* a /* nested */ comment */ SET application_name = 'x'",
    "SELECT set_config('search_path', 'x', false)",
    "UPDATE pg_settings SET setting = '3333' WHERE name = 'lock_timeout'",
    "EXPLAIN ANALYZE UPDATE pg_settings SET setting = '1234ms' WHERE name = 'statement_timeout'",
    "-- a comment ended by a carriage return\rSET statement_timeout = 1",
    `UPDATE pg_catalog."pg_settings" SET setting = '77MB' WHERE name = 'work_mem'`,
  ])("sees that %s may change the session without pinning it", (sql) => {
    expect(classify(sql)).toMatchObject({ touches: true, creates: null });
  });

  it("ignores what only looks like session SQL inside literals and comments", () => {
    expect(classify("SELECT 'LISTEN ch; SELECT pg_advisory_lock(1)'")).toMatchObject({ creates: null });
    expect(classify("SELECT $tag$ pg_advisory_lock(1) $tag$, E'it\\'s PREPARE x'")).toMatchObject({
      creates: null,
    });
    expect(classify('SELECT 1 AS "pg_advisory_lock"')).toEqual(NO_EFFECT);
    expect(classify("SELECT 1 -- ; LISTEN ch")).toMatchObject({ creates: null });
  });

  it("does not take PREPARE TRANSACTION (two-phase commit) for a prepared statement", () => {
    expect(classify("PREPARE TRANSACTION 'x'")).toMatchObject({ creates: null });
  });

  it("names the settings pg_settings cannot show: placeholders, role, session authorization", () => {
    expect(classify("SET app.tenant = 'acme'").hidden).toEqual(["app.tenant"]);
    expect(classify('SET "App"."User" TO 7').hidden).toEqual(["app.user"]);
    expect(classify("SET ROLE reader").hidden).toEqual(["role"]);
    expect(classify("RESET ROLE").hidden).toEqual(["role"]);
    expect(classify("SET SESSION AUTHORIZATION bob").hidden).toEqual(["session_authorization"]);
    expect(classify("SELECT set_config('app.x', '1', false)").hidden).toEqual(["app.x"]);
    expect(classify("SET statement_timeout = 1").hidden).toEqual([]);
  });

  it("knows what drops prepared statements and resets settings", () => {
    expect(classify("DEALLOCATE ALL")).toMatchObject({ dropsStatements: true, resetsSettings: false });
    expect(classify("deallocate prepare all")).toMatchObject({ dropsStatements: true });
    expect(classify("DEALLOCATE s1")).toMatchObject({ dropsStatements: false });
    expect(classify("DISCARD ALL")).toMatchObject({ dropsStatements: true, resetsSettings: true });
    expect(classify("RESET ALL")).toMatchObject({ dropsStatements: false, resetsSettings: true });
  });
});

describe("classify, against what a review tried (each let state leak to the next client)", () => {
  it("answers at once for comments in a row (the gate once backtracked exponentially: 28 took 24 s)", () => {
    expect(classify(`SELECT 1;${"/**/".repeat(60)}SELECT 2`)).toEqual(NO_EFFECT);
    expect(classify(`SELECT 1;${"/**/".repeat(60)} SET a.b = 1`).hidden).toEqual(["a.b"]);
  });

  it("ends a -- comment at a carriage return, and takes only PostgreSQL's whitespace for whitespace", () => {
    expect(classify("-- hi\rSET statement_timeout = '1234ms'")).toMatchObject({ touches: true });
    // a no-break space is part of an identifier, so E'… is no escape string here: the SET runs
    expect(classify("SELECT \u00a0E'x\\'; SET statement_timeout = 1234; SELECT 'z'")).toMatchObject({
      touches: true,
    });
  });

  it("sees calls spelt as quoted or U& identifiers, and names given as U& literals", () => {
    expect(classify(`SELECT "set_config"('statement_timeout', '1234ms', false)`)).toMatchObject({
      touches: true,
    });
    expect(classify(`SELECT "pg_advisory_lock"(42)`).creates).toBe("advisory lock");
    expect(classify(`SELECT U&"\\0073et_config"('app.t', 'x', false)`).hidden).toEqual(["app.t"]);
    expect(classify(`SELECT set_config(U&'r\\006fle', 'pg_monitor', false)`).hidden).toEqual(["role"]);
    expect(classify(`SELECT set_config(u&'r!006Fle' UESCAPE '!', 'x', false)`).hidden).toEqual(["role"]);
    expect(classify(`SET U&"app.\\0074enant" = 'evil'`).hidden).toEqual(["app.tenant"]);
  });

  it.each([
    "SELECT set_config(('app.tenant'), 'evil', false)",
    "SELECT set_config(text 'app.tenant', 'evil', false)",
    "SELECT set_config('app.' || 'tenant', 'evil', false)",
    "SELECT set_config($1, $2, false)",
    "SET /* the name is past what was read",
  ])("a setting it cannot name pins the client: %s", (sql) => {
    expect(classify(sql)).toMatchObject({ touches: true, unnamedSetting: true, creates: "unnamed setting" });
  });

  it("more distinct placeholders than a probe can ask for pin instead", () => {
    const many = Array.from({ length: 100 }, (_, i) => `set_config('a.n${i}', 'x', false)`).join(", ");
    const effect = classify(`SELECT ${many}`);
    expect(effect.hidden.length).toBeLessThanOrEqual(64);
    expect(effect.unnamedSetting).toBe(true);
  });

  it.each([
    "EXPLAIN ANALYZE CREATE TEMP TABLE t2 AS SELECT 1",
    "EXPLAIN (ANALYZE, BUFFERS) SELECT 1 AS a INTO TEMP t",
    "SELECT 1 AS a INTO LOCAL TEMP t1",
    "SELECT 1 AS a INTO GLOBAL TEMPORARY t1",
    "CREATE FUNCTION pg_temp.f() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
    "CREATE DOMAIN pg_temp.d AS int",
    "CREATE AGGREGATE pg_temp.total(int) (sfunc = int4pl, stype = int)",
    "CREATE OPERATOR pg_temp.=== (function = int4eq, leftarg = int, rightarg = int)",
    'CREATE COLLATION pg_temp.c FROM "C"',
    "CREATE CONVERSION pg_temp.c FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8",
    "CREATE TEXT SEARCH CONFIGURATION pg_temp.c (COPY = english)",
    "CREATE TEXT SEARCH DICTIONARY pg_temp.d (TEMPLATE = simple)",
    "CREATE TEXT SEARCH PARSER pg_temp.p (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype)",
    "CREATE TEXT SEARCH TEMPLATE pg_temp.t (LEXIZE = dsimple_lexize)",
    "CREATE OPERATOR CLASS pg_temp.c FOR TYPE int USING hash AS OPERATOR 1 =",
    "CREATE OPERATOR FAMILY pg_temp.f USING hash",
    "CREATE STATISTICS pg_temp.s ON a, b FROM t",
  ])("sees the temporary object %s creates", (sql) => {
    expect(classify(sql).creates).toBe("temporary table");
  });

  it("pins a session whose search_path puts pg_temp first (a plain CREATE TABLE is a temporary one)", () => {
    const held = (path: string) => readProbe([["search_path", path]], "app").held;
    expect(held("pg_temp, public")).toEqual(["pg_temp in search_path"]);
    expect(held('"$user", pg_temp, public')).toEqual(["pg_temp in search_path"]);
    expect(held('"$user", public')).toEqual([]);
    expect(held("pg_catalog, pg_temp")).toEqual([]);
  });
});

describe("classify, against what a second review tried", () => {
  it("takes LOCAL, SESSION and TRANSACTION for a placeholder's first part when a dot follows", () => {
    expect(classify("SET local.x = 'leaked'").hidden).toEqual(["local.x"]);
    expect(classify("SET transaction.x = 'leaked'").hidden).toEqual(["transaction.x"]);
    expect(classify("SET session.x = 'leaked'").hidden).toEqual(["session.x"]);
    expect(classify("SET SESSION local.y TO 1").hidden).toEqual(["local.y"]);
    expect(classify("SET LOCAL statement_timeout = 1")).toEqual(NO_EFFECT);
  });

  it("notes a SET LOCAL search_path (nothing to probe, but the transaction's Parses see it), not SET LOCAL of another", () => {
    for (const sql of ["SET LOCAL search_path = s1", 'BEGIN; set local "search_path" to s1'])
      expect(classify(sql)).toMatchObject({ touches: false, setsSearchPathLocally: true });
    expect(classify("SET search_path = s1")).toMatchObject({ touches: true, setsSearchPathLocally: false });
    expect(classify("SET LOCAL search_path_x.y = 1").setsSearchPathLocally).toBe(false);
  });

  it("probes after a SET LOCAL search_path naming pg_temp: a plain CREATE TABLE in that transaction is temporary", () => {
    for (const sql of [
      "SET LOCAL search_path = pg_temp",
      "SET LOCAL search_path TO 'pg_temp, public'",
      'SET LOCAL SCHEMA "pg_temp"',
    ])
      expect(classify(sql)).toMatchObject({ touches: true, setsSearchPathLocally: true });
  });

  it("pins for a placeholder a SQL-level PREPARE's statement sets: it is set at each EXECUTE, unseen", () => {
    expect(classify("PREPARE s AS SELECT set_config('app.x', 'v', false)")).toMatchObject({
      creates: "PREPARE",
      unnamedSetting: true,
    });
    expect(classify("SELECT set_config('app.x', 'v', false)").unnamedSetting).toBe(false);
  });

  it("reads EXPLAIN chains in one pass (one call per EXPLAIN was quadratic, and overflowed the stack)", () => {
    expect(classify(`${"explain ".repeat(20_000)}select 1`)).toEqual(NO_EFFECT);
    expect(classify(`${"EXPLAIN ANALYZE ".repeat(3)}SELECT set_config('a.b', '1', false)`).hidden).toEqual([
      "a.b",
    ]);
  });

  it("finds UESCAPE after a comment, as PostgreSQL's parser does", () => {
    expect(
      classify(`SELECT U&"set!005fconfig" /**/ UESCAPE /* c */ '!' ('app.u', 'leaked', false)`).hidden,
    ).toEqual(["app.u"]);
  });

  it("pins a client that runs SQL from text through a built-in (query_to_xml, ts_stat)", () => {
    const effect = classify(
      "SELECT query_to_xml('select set_' || 'config(''app.x'', ''1'', false)', true, true, '')",
    );
    expect(effect).toMatchObject({ unnamedSetting: true, creates: "unnamed setting" });
    expect(classify("SELECT * FROM ts_stat('SELECT 1')").unnamedSetting).toBe(true);
  });

  it("the probe compares with pg_catalog's operators and always asks for role and session_authorization", () => {
    const sql = probeSql([]);
    expect(sql).not.toMatch(/[^)] = /);
    expect(sql).toContain("E'role'");
    expect(sql).toContain("E'session_authorization'");
  });
});

describe("tokenize", () => {
  it("reads words, quoted identifiers, strings of every quoting, and symbols", () => {
    expect(tokenize(`SeT "a""b" = E'x\\'y' || $q$z;$q$ -- c\n/* d */;`)).toEqual([
      { kind: "word", text: "set" },
      { kind: "ident", text: 'a"b' },
      { kind: "symbol", text: "=" },
      { kind: "string", text: "x'y" },
      { kind: "symbol", text: "|" },
      { kind: "symbol", text: "|" },
      { kind: "string", text: "z;" },
      { kind: "symbol", text: ";" },
    ]);
  });

  it("keeps $1 a parameter, not a dollar quote", () => {
    expect(tokenize("SELECT $1").map((t) => t.text)).toEqual(["select", "$", "1"]);
  });
});

describe("the probe", () => {
  it("asks pg_settings, the hidden settings by name, and each kind of held state", () => {
    const sql = probeSql(["app.tenant"]);
    expect(sql).toContain("FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session'");
    expect(sql).toContain("pg_catalog.current_setting(E'app.tenant', true)");
    expect(sql).toContain("pg_catalog.pg_listening_channels()");
  });

  it("reads settings and held state, leaving out hidden settings at their fresh value", () => {
    const r = readProbe(
      [
        ["statement_timeout", "1234"],
        ["role", "none"],
        ["app.tenant", ""],
        ["app.user", "7"],
        ["session_authorization", "alice"],
        [null, "LISTEN"],
        [null, "advisory lock"],
      ],
      "alice",
    );
    expect([...r.settings]).toEqual([
      ["statement_timeout", "1234"],
      ["app.user", "7"],
    ]);
    expect(r.held).toEqual(["LISTEN", "advisory lock"]);
  });
});

describe("ClientSession", () => {
  it("takes the probed settings, and the startup value back where RESET removed it", () => {
    const s = new ClientSession();
    s.setAtStartup("statement_timeout", "5s");
    s.setAtStartup("search_path", "x");
    s.note(classify("RESET search_path; SET app.tenant = 'a'"));
    expect(s.touched).toBe(true);
    expect(s.probeSql(NO_BASELINE)).toContain("'app.tenant'");
    const server = s.update(
      {
        settings: new Map([
          ["statement_timeout", "5000"],
          ["app.tenant", "a"],
          ["application_name", "psql"],
        ]),
        held: [],
      },
      (name) => name === "application_name",
      NO_SETTINGS,
    );
    expect([...server]).toEqual([
      ["statement_timeout", "5000"],
      ["app.tenant", "a"],
    ]);
    expect([...s.settings]).toEqual([
      ["statement_timeout", "5000"],
      ["app.tenant", "a"],
      ["search_path", "x"],
    ]);
    expect(s.touched).toBe(false);
    // the placeholder it holds is asked for next time too
    expect(s.probeSql(NO_BASELINE)).toContain("'app.tenant'");
  });

  it("leaves connect_query's values (the server's baseline) out of the client's own", () => {
    const s = new ClientSession();
    s.note(classify("SET statement_timeout = 5"));
    const baseline = {
      settings: new Map([
        ["search_path", "app, public"],
        ["app.tenant", "t1"],
      ]),
      held: new Map([["PREPARE" as const, ["setup"]]]),
    };
    // the baseline's placeholder is asked for, and its prepared statement is not the client's
    const sql = s.probeSql(baseline);
    expect(sql).toContain("'app.tenant'");
    expect(sql).toContain(
      "WHERE NOT held.id OPERATOR(pg_catalog.=) ANY (ARRAY[E'setup']::pg_catalog.text[])",
    );
    const server = s.update(
      {
        settings: new Map([
          ["search_path", "app, public"],
          ["app.tenant", "t1"],
          ["statement_timeout", "5"],
        ]),
        held: [],
      },
      () => false,
      baseline.settings,
    );
    expect(server.size).toBe(3);
    expect([...s.settings]).toEqual([["statement_timeout", "5"]]);
  });

  it("does not pin for a pg_temp-first search_path that is connect_query's", () => {
    const baseline = { settings: new Map([["search_path", "pg_temp, public"]]), held: new Map() };
    expect(readProbe([["search_path", "pg_temp, public"]], "app", baseline).held).toEqual([]);
    expect(readProbe([["search_path", "pg_temp, app"]], "app", baseline).held).toEqual([
      "pg_temp in search_path",
    ]);
  });
});
