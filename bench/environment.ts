// What a benchmark ran on and with: the machine, and the versions of everything measured, for the
// head of bench/RESULTS.md (figures from another machine or another PgBouncer are not comparable).
import fs from "node:fs";
import os from "node:os";

type Sh = (file: string, args: string[]) => Promise<string>;

export function describeMachine(): [string, string][] {
  const cpus = os.cpus();
  const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  return [
    ["CPU", `${cpus[0]?.model ?? "unknown"} × ${cpus.length}`],
    ["memory", gib(os.totalmem())],
    ["kernel", `${os.type()} ${os.release()} (${os.arch()})`],
    ["Node.js", process.version],
    ["load average at start (1, 5, 15 min)", load],
  ];
}

const firstLine = (s: string): string => s.trim().split("\n")[0] ?? "";

/** Versions, asking each program itself; `pgPort` is the PostgreSQL server under test. */
export async function toolVersions(sh: Sh, pgPort: number): Promise<[string, string][]> {
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as { name: string; version: string };
  const [server, pgbouncer, pgbench] = await Promise.all([
    sh("psql", ["-h", "127.0.0.1", "-p", String(pgPort), "-Atc", "SELECT version()"]),
    sh(process.env.PGBOUNCER ?? "pgbouncer", ["--version"]), // the harness honours PGBOUNCER too
    sh("pgbench", ["--version"]),
  ]);
  return [
    ["PostgreSQL server", firstLine(server)],
    ["PgBouncer", firstLine(pgbouncer)],
    ["pgbench", firstLine(pgbench)],
    [pkg.name, pkg.version],
  ];
}
