// bench/RESULTS.md and docs/bench-chart.svg are computed from the harness's runs.csv and
// idle-conns' --json line: a wrong median, ratio or CPU figure there would misreport issue 6's targets.
// The fixture is in the harness's format: three reps at 10 clients, two at 200 where direct is refused.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { renderChart } from "../../bench/chart.ts";
import {
  checkTargets,
  parseIdleJson,
  parseRunsCsv,
  renderResultsMarkdown,
  shellLine,
  summarizeRuns,
  type BenchResults,
} from "../../bench/results.ts";

const csv = fs.readFileSync(new URL("fixtures/runs.csv", import.meta.url), "utf8");
const idleOutput = (kB: number, connected = 10_000): string =>
  [
    "idle-conns: 10000 connections to 127.0.0.1:6432 db=bench user=postgres; measuring pid 42",
    `VmRSS before 4740 kB, with ${connected} idle conns … = ${kB} kB/conn`,
    JSON.stringify({ target: "127.0.0.1:6432", requested: 10_000, connected, kB_per_conn: kB }),
    "",
  ].join("\n");
const results: BenchResults = {
  configs: summarizeRuns(parseRunsCsv(csv)),
  connect: summarizeRuns(parseRunsCsv(csv)).slice(0, 1),
  idle: [
    parseIdleJson("pgbouncer", idleOutput(0.79), 3),
    parseIdleJson("ours", idleOutput(2.5), 3),
    parseIdleJson("pgbouncer", idleOutput(0.8), 60),
    parseIdleJson("ours", idleOutput(1.5), 60),
  ],
};
const info = {
  date: "2026-11-25 12:00 UTC",
  machine: [["CPU", "AMD EPYC × 2"]] as [string, string][],
  versions: [["PgBouncer", "PgBouncer 1.18.0"]] as [string, string][],
  invocation: ["npm", "run", "bench", "--", "--configs", "select:simple@10 select:simple@200"],
  setup: "pool 20.",
  commands: [["PGB_PORT=6432", "../shared/bench/pgbouncer-ctl.sh", "start"]],
};

describe("bench results", () => {
  it("takes medians, spreads and the pooler's CPU per transaction from runs.csv", () => {
    const [small, big] = results.configs;
    expect(small!.config).toBe("select:simple@10");
    expect(small!.targets.direct).toEqual({
      runs: 3,
      ok: 3,
      tps: { median: 20000.5, min: 10000, max: 22000 },
      latencyMs: 0.5,
    });
    // 32 % of a core at 16000 TPS, 33 % at 16500 and 36 % at 18000 are all 20 µs per transaction
    expect(small!.targets.pgbouncer!.cpuUsPerXact).toBeCloseTo(20, 9);
    expect(small!.targets.ours!.cpuUsPerXact).toBeCloseTo(44, 9); // median of 50, 40 and 44
    expect(big!.targets.direct).toEqual({ runs: 2, ok: 0, failure: "refused (too many clients)" });
    expect(big!.targets.ours!.tps).toEqual({ median: 16500, min: 16000, max: 17000 });
  });

  it("names a missing column instead of reading the wrong one", () => {
    expect(() => parseRunsCsv("cfg,target,rep,rc,tps,error\n")).toThrow('runs.csv has no column "lat_ms"');
  });

  it("reads idle-conns' JSON line, not its prose", () => {
    expect(results.idle[3]).toEqual({
      target: "ours",
      settleSeconds: 60,
      requested: 10_000,
      connected: 10_000,
      kBPerConn: 1.5,
    });
    expect(() => parseIdleJson("ours", "connected 0/1000\n", 3)).toThrow("no --json line for ours");
  });

  it("computes issue 6's targets", () => {
    expect(checkTargets(results).map((c) => [c.measured, c.met])).toEqual([
      ["0.76", false],
      ["1.08", true],
      ["44 µs vs 20 µs", false],
      ["22 µs vs 20 µs", false],
      ["2.50 kB", false],
      ["1.50 kB", true],
    ]);
    expect(checkTargets(results).at(-1)?.goal).toBe(
      "idle memory ≤ 2 kB per client connection at 10,000 clients, RSS read 60 s after the logins",
    );
  });

  it("judges idle memory only at the 10,000 clients the target is stated for", () => {
    const small = { ...results, idle: [parseIdleJson("ours", idleOutput(0.5, 9_998), 3)] };
    expect(checkTargets(small).at(-1)).toMatchObject({
      measured: "not measured (9998 connected)",
      met: undefined,
    });
  });

  it("renders RESULTS.md with the tables, the targets and the commands", () => {
    const md = renderResultsMarkdown(results, info);
    expect(md).toContain(
      "| `select:simple@10` | 20001 (10000–22000) | 16500 (16000–18000) | 12500 (12000–13000) | 0.76 | 0.62 | 0.500 / 0.600 / 0.800 | 20 µs / 44 µs |",
    );
    expect(md).toContain(
      "| `select:simple@200` | refused (too many clients) | 15250 (15000–15500) | 16500 (16000–17000) | 1.08 | — |",
    );
    expect(md).toContain("2 of 6 met.");
    // pgbench -C gets a table of its own and is not counted among the targets
    const connect = md.slice(md.indexOf("## One connection per transaction"), md.indexOf("## Idle"));
    expect(connect).toContain("| `select:simple@10` | 20001 (10000–22000) |");
    expect(connect).not.toContain("select:simple@200");
    expect(renderResultsMarkdown({ ...results, connect: [] }, info)).toContain("Not run (`--connect ''`");
    expect(md).toContain("| `select:simple@200`: ours / PgBouncer TPS ≥ 1.0 | 1.08 | **met** |");
    expect(md).toContain("| ours | 3 s | 10000/10000 | 2.50 kB |");
    expect(md).toContain("| ours | 60 s | 10000/10000 | 1.50 kB |");
    expect(md).toContain("`npm run bench -- --configs 'select:simple@10 select:simple@200'` ran these.");
    expect(md).toContain("PGB_PORT=6432 ../shared/bench/pgbouncer-ctl.sh start\n");
  });

  it("quotes command lines for a POSIX shell", () => {
    expect(shellLine(["bash", "-c", "ulimit -n $(ulimit -Hn) && it's"])).toBe(
      `bash -c 'ulimit -n $(ulimit -Hn) && it'\\''s'`,
    );
  });

  it("draws bars to scale on a white background, and marks the refused direct run", () => {
    const svg = renderChart(results.configs, "subtitle & more");
    expect(svg).toMatch(/^<svg [^>]*>\n<rect width="\d+" height="\d+" fill="#ffffff"\/>/);
    expect(svg).toContain("subtitle &amp; more");
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="26" height="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(bars).toHaveLength(5); // 3 at 10 clients, 2 at 200 (direct refused)
    expect(bars[4]! / bars[3]!).toBeCloseTo(16500 / 15250, 6);
    expect(svg).toContain("× no result: direct refused (too many clients) in select:simple@200");
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  });
});
