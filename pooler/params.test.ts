import { describe, expect, it } from "vitest";
import {
  isSettingName,
  paramSyncSql,
  parseStartupOptions,
  settingsSyncSql,
  shared,
  syncedSettings,
  trackedOnly,
  withParam,
} from "./params.ts";

describe("parseStartupOptions", () => {
  it("reads -c, -cname=value and --name=value, dashes meaning underscores", () => {
    expect(parseStartupOptions("-c search_path=a,b -cstatement_timeout=5s --work-mem=8MB")).toEqual([
      ["search_path", "a,b"],
      ["statement_timeout", "5s"],
      ["work_mem", "8MB"],
    ]);
  });

  it("takes a backslash-escaped space as part of the value", () => {
    expect(parseStartupOptions("-c application_name=my\\ app  -c x.y=1")).toEqual([
      ["application_name", "my app"],
      ["x.y", "1"],
    ]);
  });

  it("refuses other switches and settings without a value", () => {
    expect(() => parseStartupOptions("-B 100")).toThrow(/unsupported option/);
    expect(() => parseStartupOptions("-c statement_timeout")).toThrow(/name=value/);
    expect(() => parseStartupOptions("-c")).toThrow(/name=value/);
  });
});

describe("settingsSyncSql", () => {
  // the server's ParameterStatus values when its current role is a superuser
  const SUPERUSER_NOW = new Map([["is_superuser", "on"]]);

  it("resets what only the server has and sets what differs, role last", () => {
    const wanted = new Map([
      ["role", "reader"],
      ["search_path", 'a, "b c"'],
      ["statement_timeout", "1234"],
    ]);
    const current = new Map([
      ["statement_timeout", "1234"],
      ["app.tenant", "x"],
    ]);
    expect(settingsSyncSql(wanted, current, new Map())).toBe(
      `RESET "app"."tenant";SELECT pg_catalog.set_config(E'search_path', E'a, "b c"', false), ` +
        `pg_catalog.set_config(E'role', E'reader', false);`,
    );
  });

  it("changes the others under the session's own identity, then sets session_authorization and role", () => {
    // the last client's role could lack the privilege for them (a superuser-only setting)
    const current = new Map([
      ["role", "reader"],
      ["log_min_duration_statement", "0"],
    ]);
    expect(settingsSyncSql(new Map(), current, new Map())).toBe(
      `RESET "role";RESET "log_min_duration_statement";`,
    );
    const own = new Map([
      ["role", "reader"],
      ["session_authorization", "app"],
      ["log_min_duration_statement", "5"],
    ]);
    expect(settingsSyncSql(own, current, new Map())).toBe(
      `RESET "role";SELECT pg_catalog.set_config(E'log_min_duration_statement', E'5', false), ` +
        `pg_catalog.set_config(E'session_authorization', E'app', false), pg_catalog.set_config(E'role', E'reader', false);`,
    );
    expect(settingsSyncSql(own, own, new Map())).toBe("");
  });

  it("with a login that is no superuser, changes settings under the server's role if a superuser's, else the client's", () => {
    // only a SET ROLE to a superuser role can have set a superuser-only setting there
    const current = new Map([
      ["role", "admins"],
      ["log_min_duration_statement", "0"],
    ]);
    expect(settingsSyncSql(new Map(), current, new Map(), false, SUPERUSER_NOW)).toBe(
      `RESET "log_min_duration_statement";RESET "role";`,
    );
    const own = new Map([
      ["log_min_duration_statement", "5"],
      ["role", "admins"],
    ]);
    expect(settingsSyncSql(own, new Map(), new Map(), false, new Map())).toBe(
      `SELECT pg_catalog.set_config(E'role', E'admins', false);SELECT pg_catalog.set_config(E'log_min_duration_statement', E'5', false);`,
    );
    expect(settingsSyncSql(own, current, new Map(), false, SUPERUSER_NOW)).toBe(
      `SELECT pg_catalog.set_config(E'log_min_duration_statement', E'5', false);`,
    );
    // connect_query's superuser role (the baseline) left for one that is none after such a setting
    const baseline = new Map([["role", "admins"]]);
    const left = new Map([
      ["role", "readers"],
      ["log_min_duration_statement", "0"],
    ]);
    expect(settingsSyncSql(new Map(), left, baseline, false, new Map())).toBe(
      `SELECT pg_catalog.set_config(E'role', E'admins', false);RESET "log_min_duration_statement";`,
    );
    expect(settingsSyncSql(left, baseline, baseline, false, SUPERUSER_NOW)).toBe(
      `SELECT pg_catalog.set_config(E'log_min_duration_statement', E'0', false), pg_catalog.set_config(E'role', E'readers', false);`,
    );
  });

  it("is empty when the server already matches", () => {
    expect(settingsSyncSql(new Map([["a", "1"]]), new Map([["a", "1"]]), new Map())).toBe("");
  });

  it("puts back connect_query's values (the baseline) where the client has none of its own", () => {
    const baseline = new Map([
      ["search_path", "app, public"],
      ["role", "reader"],
      ["work_mem", "8192"],
    ]);
    const own = new Map([["work_mem", "1024"]]);
    // a DISCARD ALL wiped the server; another client left statement_timeout there
    const current = new Map([["statement_timeout", "5"]]);
    expect(settingsSyncSql(own, current, baseline)).toBe(
      `RESET "statement_timeout";SELECT pg_catalog.set_config(E'work_mem', E'1024', false), ` +
        `pg_catalog.set_config(E'search_path', E'app, public', false), pg_catalog.set_config(E'role', E'reader', false);`,
    );
    const synced = syncedSettings(own, baseline);
    expect(settingsSyncSql(own, synced, baseline)).toBe("");
    // under the session's own identity, connect_query's role put back after
    expect(settingsSyncSql(new Map(), synced, baseline)).toBe(
      `RESET "role";SELECT pg_catalog.set_config(E'work_mem', E'8192', false), pg_catalog.set_config(E'role', E'reader', false);`,
    );
  });
});

describe("isSettingName", () => {
  it("accepts GUC and placeholder names, not protocol options or odd characters", () => {
    expect(isSettingName("statement_timeout")).toBe(true);
    expect(isSettingName("app.tenant_id")).toBe(true);
    expect(isSettingName("_pq_.compression")).toBe(false);
    expect(isSettingName("frob nicate")).toBe(false);
    expect(isSettingName("1abc")).toBe(false);
  });
});

describe("paramSyncSql", () => {
  const defaults = new Map([
    ["DateStyle", "ISO, MDY"],
    ["TimeZone", "UTC"],
    ["application_name", ""],
  ]);

  it("gives a client its own values and the pool's defaults for the rest, whatever the server had", () => {
    // the server was left by a client that set DateStyle and application_name
    const current = new Map([
      ["DateStyle", "German, DMY"],
      ["TimeZone", "UTC"],
      ["application_name", "other"],
    ]);
    expect(paramSyncSql(new Map([["TimeZone", "Europe/Paris"]]), defaults, current)).toBe(
      "SET DateStyle = E'ISO, MDY';SET TimeZone = E'Europe/Paris';SET application_name = E'';",
    );
    expect(paramSyncSql(null, defaults, current)).toBe(
      "SET DateStyle = E'ISO, MDY';SET application_name = E'';",
    );
  });

  it("also sets a parameter of the client's that the defaults lack, and nothing when all match", () => {
    const own = new Map([["IntervalStyle", "iso_8601"]]);
    expect(paramSyncSql(own, defaults, defaults)).toBe("SET IntervalStyle = E'iso_8601';");
    expect(paramSyncSql(own, defaults, new Map([...defaults, ...own]))).toBe("");
    expect(paramSyncSql(null, defaults, defaults)).toBe("");
  });
});

describe("a client's own parameters", () => {
  it("are shared between clients that chose the same, and copied, never changed, when one sets more", () => {
    const mine = shared(withParam(withParam(null, "application_name", "shop"), "client_encoding", "UTF8"));
    const theirs = shared(withParam(withParam(null, "application_name", "shop"), "client_encoding", "UTF8"));
    expect(theirs).toBe(mine);
    const changed = withParam(theirs, "DateStyle", "German");
    expect(changed).not.toBe(mine);
    expect([...mine]).toEqual([
      ["application_name", "shop"],
      ["client_encoding", "UTF8"],
    ]);
    expect(changed.get("DateStyle")).toBe("German");
    expect(withParam(mine, "application_name", "shop")).toBe(mine);
  });
});

describe("trackedOnly", () => {
  it("keeps PgBouncer's tracked parameters and the extra ones, as the server names them", () => {
    const reported = new Map([
      ["server_version", "13.23"],
      ["DateStyle", "ISO, MDY"],
      ["IntervalStyle", "postgres"],
      ["is_superuser", "on"],
      ["application_name", ""],
    ]);
    expect([...trackedOnly(reported, ["intervalstyle"]).keys()]).toEqual([
      "DateStyle",
      "IntervalStyle",
      "application_name",
    ]);
    expect([...trackedOnly(reported, []).keys()]).toEqual(["DateStyle", "application_name"]);
  });
});

describe("quoting in the pooler's own SQL", () => {
  it("survives standard_conforming_strings = off: backslashes and quotes cannot end the literal", () => {
    const sql = paramSyncSql(new Map([["application_name", "a\\'; SELECT 1; --"]]), new Map(), new Map());
    expect(sql).toBe("SET application_name = E'a\\\\''; SELECT 1; --';");
  });
});
