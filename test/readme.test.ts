// The README must list every setting the pooler accepts and every SHOW command its console answers,
// and name only commands that exist: documentation that drifts from the code misleads the reader first.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { SHOW_COMMANDS } from "../pooler/admin/show.ts";
import { SETTINGS } from "../pooler/config/settings.ts";

const readme = fs.readFileSync("README.md", "utf8");
const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };

describe("README", () => {
  it("documents every pooler setting with its env var and its ini key", () => {
    const missing = SETTINGS.filter(
      (s) => !readme.includes(`\`${s.key.toUpperCase()}\``) || !readme.includes(`\`${s.key}\``),
    );
    expect(missing.map((s) => s.key)).toEqual([]);
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
