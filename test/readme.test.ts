// The README must list every setting the pooler accepts and every SHOW command its console answers,
// and name only commands that exist: documentation that drifts from the code misleads the reader first.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { SHOW_COMMANDS } from "../pooler/admin/show.ts";
import { SETTINGS } from "../pooler/config/settings.ts";
import { SqlState } from "../pooler/protocol/sqlstate.ts";

const readme = fs.readFileSync("README.md", "utf8");
/** The README's text between two markers (a section or a table). */
function between(start: string, end: string): string {
  const from = readme.indexOf(start);
  expect(from, start).toBeGreaterThan(-1);
  return readme.slice(from, readme.indexOf(end, from + start.length));
}
const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };

describe("README", () => {
  it("documents every pooler setting with its env var and its ini key", () => {
    const missing = SETTINGS.filter(
      (s) => !readme.includes(`\`${s.key.toUpperCase()}\``) || !readme.includes(`\`${s.key}\``),
    );
    expect(missing.map((s) => s.key)).toEqual([]);
  });

  it("gives each setting's default and whether it can be changed online as SHOW CONFIG does", () => {
    const rows = new Map<string, string[]>();
    for (const line of between("| env var | pgbouncer.ini |", "\n\n").split("\n")) {
      const cells = line.split(" | ");
      const key = /^`([a-z0-9_]+)`$/.exec(cells[1] ?? "")?.[1];
      if (key !== undefined) rows.set(key, cells.slice(2));
    }
    const wrong = SETTINGS.filter((s) => {
      const [shownDefault = "", changeable = ""] = rows.get(s.key) ?? [];
      // an empty or unset default is written in words ("empty", "—"), and may depend on the source
      const defaultOk = s.default === null || s.default === "" || shownDefault.startsWith(`\`${s.default}\``);
      return !defaultOk || !changeable.startsWith(s.changeable ? "yes" : "no");
    });
    expect(wrong.map((s) => s.key)).toEqual([]);
  });

  it("maps every module of pooler/, and only modules that exist", () => {
    const map = between("| module | one job |", "\n\n");
    const modules = fs
      .readdirSync("pooler", { withFileTypes: true })
      .filter((e) => !e.name.endsWith(".test.ts"))
      .map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
    // a module may be named in another's row (main.ts's log.ts); the first column names only real ones
    expect(modules.filter((m) => !map.includes(`\`${m}\``))).toEqual([]);
    const rowHeads = [...map.matchAll(/^\| (.+?) \|/gm)]
      .slice(2)
      .flatMap((m) => m[1]!.match(/[\w-]+(\.ts|\/)/g)!);
    expect(rowHeads.length).toBeGreaterThan(30);
    expect(rowHeads.filter((m) => !modules.includes(m))).toEqual([]);
  });

  it("names the SQLSTATE of every error the admin console answers with", () => {
    const section = between("**PgBouncer's admin console.**", "**Prometheus.**");
    const used = new Set<string>();
    for (const file of fs.readdirSync("pooler/admin")) {
      const source = fs.readFileSync(`pooler/admin/${file}`, "utf8");
      for (const m of source.matchAll(/AdminError\(\s*SqlState\.(\w+)/g)) {
        used.add(SqlState[m[1] as keyof typeof SqlState]);
      }
    }
    expect(used.size).toBeGreaterThan(4);
    expect([...used].filter((code) => !section.includes(`\`${code}\``))).toEqual([]);
  });

  it("lists every SHOW command of the admin console, and no other", () => {
    const listed = /`SHOW (HELP\|[A-Z_|]+)`/.exec(readme)?.[1]?.toLowerCase().split("|");
    expect(listed?.sort()).toEqual([...SHOW_COMMANDS.keys()].sort());
  });

  it("names only npm scripts that exist", () => {
    const used = [...readme.matchAll(/npm run ([a-z:]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(3);
    expect(used.filter((s) => !(s in pkg.scripts))).toEqual([]);
  });

  it("gives the two commands, and CI runs the test one", () => {
    expect(readme).toContain("npm install && npm start");
    expect(readme).toContain("npm test");
    expect(fs.readFileSync(".ci/run", "utf8")).toMatch(/^npm test$/m);
  });
});
