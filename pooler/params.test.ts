import { describe, expect, it } from "vitest";
import { isSettingName, paramSyncSql, parseStartupOptions, settingsSyncSql } from "./params.ts";

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
    expect(settingsSyncSql(wanted, current)).toBe(
      `RESET "app"."tenant";SELECT pg_catalog.set_config(E'search_path', E'a, "b c"', false), ` +
        `pg_catalog.set_config(E'role', E'reader', false);`,
    );
  });

  it("is empty when the server already matches", () => {
    expect(settingsSyncSql(new Map([["a", "1"]]), new Map([["a", "1"]]))).toBe("");
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

describe("quoting in the pooler's own SQL", () => {
  it("survives standard_conforming_strings = off: backslashes and quotes cannot end the literal", () => {
    const sql = paramSyncSql(new Map([["application_name", "a\\'; SELECT 1; --"]]), new Map());
    expect(sql).toBe("SET application_name = E'a\\\\''; SELECT 1; --';");
  });
});
