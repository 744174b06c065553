// The results of `npm run bench`: parsed from what the shared harness writes (pgbench-compare.sh's
// runs.csv, idle-conns.mjs's --json line) and rendered as bench/RESULTS.md. Pure functions, so the
// markdown and the chart can be checked on a fixture without running a benchmark.

/** The harness's target names; the pooler targets are also the names of its watched processes. */
export const TARGETS = ["direct", "pgbouncer", "ours"] as const;
export type Target = (typeof TARGETS)[number];
export const LABELS: Record<Target, string> = { direct: "direct", pgbouncer: "PgBouncer", ours: "ours" };

/** One pgbench run: a row of runs.csv. */
export interface Run {
  config: string;
  target: string;
  rep: number;
  skipped: boolean;
  ok: boolean;
  tps: number;
  latencyMs: number;
  /** CPU of each watched process during the run, as % of one core (`cpu_<name>` columns). */
  cpuPct: Record<string, number>;
  error: string;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface TargetResult {
  runs: number;
  ok: number;
  tps?: Spread;
  latencyMs?: number;
  /** the target's own process CPU per transaction (only for targets that are watched processes) */
  cpuUsPerXact?: number;
  /** why some or all runs gave no figure, e.g. "refused (too many clients)" */
  failure?: string;
}

export interface ConfigResult {
  config: string;
  targets: Partial<Record<Target, TargetResult>>;
}

export interface IdleResult {
  target: Target;
  /** seconds idle-conns waited before reading RSS (before and after the logins) */
  settleSeconds: number;
  requested: number;
  connected: number;
  kBPerConn: number | null;
}

export interface BenchResults {
  configs: ConfigResult[];
  /** configs run again with a new connection per transaction (`pgbench -C`); not one of issue 6's targets */
  connect: ConfigResult[];
  idle: IdleResult[];
}

export interface RunInfo {
  date: string;
  machine: [string, string][];
  versions: [string, string][];
  /** how the bench itself was started */
  invocation: string[];
  /** the settings that are not visible in the commands */
  setup: string;
  /** argv of every command run, in order (leading NAME=value items are environment variables) */
  commands: string[][];
}

const IDLE_TARGET_KB = 2;
const IDLE_TARGET_CLIENTS = 10_000;

export function parseRunsCsv(text: string): Run[] {
  const [header, ...lines] = text.trim().split("\n");
  if (!header) return [];
  const columns = header.split(",");
  const at = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`runs.csv has no column "${name}"`);
    return i;
  };
  const [cfg, target, rep, rc, tps, lat, error] = [
    "cfg",
    "target",
    "rep",
    "rc",
    "tps",
    "lat_ms",
    "error",
  ].map(at) as [number, number, number, number, number, number, number];
  const cpuColumns = columns.flatMap((name, i) =>
    name.startsWith("cpu_") ? [[name.slice(4), i] as const] : [],
  );
  return lines.map((line) => {
    const f = line.split(",");
    const cpuPct: Record<string, number> = {};
    for (const [name, i] of cpuColumns) if (f[i]) cpuPct[name] = Number(f[i]);
    return {
      config: f[cfg]!,
      target: f[target]!,
      rep: Number(f[rep]),
      skipped: f[rc] === "skipped",
      ok: f[rc] === "0" && f[tps] !== "",
      tps: Number(f[tps]),
      latencyMs: Number(f[lat]),
      cpuPct,
      // the harness strips commas from the error, but a stray one must not cut the message short
      error: f.slice(error).join(","),
    };
  });
}

/** The numbers of idle-conns.mjs's --json line (the last line of its output that is JSON). */
export function parseIdleJson(target: Target, output: string, settleSeconds: number): IdleResult {
  const line = output
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (!line) throw new Error(`idle-conns printed no --json line for ${target}`);
  const json = JSON.parse(line) as { requested: number; connected: number; kB_per_conn: number | null };
  return {
    target,
    settleSeconds,
    requested: json.requested,
    connected: json.connected,
    kBPerConn: json.kB_per_conn,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function describeFailure(error: string): string {
  return /too many clients|connection slots are reserved/.test(error) ? "refused (too many clients)" : error;
}

function summarizeTarget(target: Target, runs: Run[]): TargetResult {
  const ok = runs.filter((r) => r.ok);
  const failed = runs.filter((r) => !r.ok && !r.skipped);
  const result: TargetResult = { runs: runs.length, ok: ok.length };
  if (failed.length) {
    const why = describeFailure(failed[0]!.error);
    result.failure = ok.length ? `${failed.length}/${runs.length} runs failed: ${why}` : why;
  }
  if (!ok.length) return result;
  const tps = ok.map((r) => r.tps);
  result.tps = { median: median(tps), min: Math.min(...tps), max: Math.max(...tps) };
  result.latencyMs = median(ok.map((r) => r.latencyMs));
  // per run, the watched process's share of one core spread over that run's transactions
  const cpu = ok.flatMap((r) => (target in r.cpuPct ? [((r.cpuPct[target]! / 100) * 1e6) / r.tps] : []));
  if (cpu.length) result.cpuUsPerXact = median(cpu);
  return result;
}

/** Medians per config and target, configs in the order they were run. */
export function summarizeRuns(runs: Run[]): ConfigResult[] {
  const configs = [...new Set(runs.map((r) => r.config))];
  return configs.map((config) => {
    const targets: ConfigResult["targets"] = {};
    for (const target of TARGETS) {
      const mine = runs.filter((r) => r.config === config && r.target === target);
      if (mine.length) targets[target] = summarizeTarget(target, mine);
    }
    return { config, targets };
  });
}

export function ratio(c: ConfigResult, over: Target): number | undefined {
  const ours = c.targets.ours?.tps?.median;
  const base = c.targets[over]?.tps?.median;
  return ours !== undefined && base ? ours / base : undefined;
}

export interface TargetCheck {
  goal: string;
  measured: string;
  met: boolean | undefined;
}

/** Issue 6's targets, each per config where it is per config. `met` is undefined when unmeasured. */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const c of results.configs) {
    const r = ratio(c, "pgbouncer");
    checks.push({
      goal: `\`${c.config}\`: ours / PgBouncer TPS ≥ 1.0`,
      measured: r === undefined ? "not measured" : r.toFixed(2),
      met: r === undefined ? undefined : r >= 1,
    });
  }
  for (const c of results.configs) {
    const theirs = c.targets.pgbouncer?.cpuUsPerXact;
    const ours = c.targets.ours?.cpuUsPerXact;
    const measured = theirs !== undefined && ours !== undefined;
    checks.push({
      goal: `\`${c.config}\`: pooler CPU per transaction ≤ PgBouncer's`,
      measured: measured ? `${us(ours)} vs ${us(theirs)}` : "not measured",
      met: measured ? ours <= theirs : undefined,
    });
  }
  const idleRuns = results.idle.filter((i) => i.target === "ours");
  for (const ours of idleRuns.length ? idleRuns : [undefined]) {
    // the target is stated at 10,000 clients: a smaller run measures something else
    const idle = ours && ours.connected >= IDLE_TARGET_CLIENTS ? ours.kBPerConn : null;
    const when = ours ? `, RSS read ${ours.settleSeconds} s after the logins` : "";
    checks.push({
      goal: `idle memory ≤ ${IDLE_TARGET_KB} kB per client connection at ${IDLE_TARGET_CLIENTS.toLocaleString("en")} clients${when}`,
      measured:
        idle == null
          ? `not measured${ours ? ` (${ours.connected} connected)` : ""}`
          : `${idle.toFixed(2)} kB`,
      met: idle == null ? undefined : idle <= IDLE_TARGET_KB,
    });
  }
  return checks;
}

const us = (x: number): string => `${x.toFixed(0)} µs`;
const fmtRatio = (x: number | undefined): string => (x === undefined ? "—" : x.toFixed(2));

function tpsCell(t: TargetResult | undefined): string {
  if (!t) return "—";
  if (!t.tps) return t.failure ?? "no result";
  const spread = `${t.tps.median.toFixed(0)} (${t.tps.min.toFixed(0)}–${t.tps.max.toFixed(0)})`;
  return t.failure ? `${spread}; ${t.failure}` : spread;
}

/** A command line as it would be typed in a POSIX shell. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

function table(header: string[], rows: string[][], align: string[] = header.map(() => "---")): string {
  return [header, align, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

function tpsTable(configs: ConfigResult[]): string {
  const latencies = (c: ConfigResult): string =>
    TARGETS.map((t) => c.targets[t]?.latencyMs?.toFixed(3) ?? "—").join(" / ");
  const cpu = (c: ConfigResult): string =>
    (["pgbouncer", "ours"] as const)
      .map((t) => (c.targets[t]?.cpuUsPerXact === undefined ? "—" : us(c.targets[t]!.cpuUsPerXact!)))
      .join(" / ");
  return table(
    [
      "config",
      ...TARGETS.map((t) => `${LABELS[t]} TPS (min–max)`),
      "ours / PgBouncer",
      "ours / direct",
      "latency ms (direct / PgBouncer / ours)",
      "pooler CPU per transaction (PgBouncer / ours)",
    ],
    configs.map((c) => [
      `\`${c.config}\``,
      ...TARGETS.map((t) => tpsCell(c.targets[t])),
      fmtRatio(ratio(c, "pgbouncer")),
      fmtRatio(ratio(c, "direct")),
      latencies(c),
      cpu(c),
    ]),
    ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"],
  );
}

export function renderResultsMarkdown(results: BenchResults, info: RunInfo): string {
  const idleTable = table(
    ["pooler", "RSS read after", "connected", "RSS per idle client"],
    results.idle.map((i) => [
      LABELS[i.target],
      `${i.settleSeconds} s`,
      `${i.connected}/${i.requested}`,
      i.kBPerConn === null ? "—" : `${i.kBPerConn.toFixed(2)} kB`,
    ]),
    ["---", "---:", "---:", "---:"],
  );
  const checks = checkTargets(results);
  const verdict = (met: boolean | undefined): string =>
    met === undefined ? "not measured" : met ? "**met**" : "not met";
  const targetsTable = table(
    ["target (issue 6)", "measured", ""],
    checks.map((c) => [c.goal, c.measured, verdict(c.met)]),
  );
  const met = checks.filter((c) => c.met).length;

  return `# Benchmark results

Written by \`npm run bench\` on ${info.date}; do not edit by hand (run it again). The machine is shared and
noisy: read the ratios, which compare targets run interleaved (A B A B …) in the same minutes.

## Machine

${table(
  ["", ""],
  info.machine.map(([k, v]) => [k, v]),
)}

## Versions

${table(
  ["", ""],
  info.versions.map(([k, v]) => [k, v]),
)}

## Commands

\`${shellLine(info.invocation)}\` ran these. ${info.setup}

\`\`\`sh
${info.commands.map(shellLine).join("\n")}
\`\`\`

## Targets

${met} of ${checks.length} met.

${targetsTable}

## pgbench

Medians over the repetitions, min–max in brackets. Configs are \`workload:protocol@clients\`: \`select\` is
\`pgbench -S\`, \`tpcb\` pgbench's default TPC-B-like script, the protocol is \`pgbench -M\`. Pooler CPU per
transaction is the pooler process's CPU (as % of one core, sampled from \`/proc\`) × 10⁶ / TPS, median over the
runs.

${results.configs.length ? tpsTable(results.configs) : "Not run (`--skip-pgbench` or `--configs ''`)."}

## One connection per transaction

The same with \`pgbench -C\`: every transaction opens a connection and logs in, as an application without a
connection pool of its own does (Django with \`CONN_MAX_AGE = 0\`, PHP). TPS and CPU per transaction include
the logins. Not one of issue 6's targets.

${results.connect.length ? tpsTable(results.connect) : "Not run (`--connect ''` or `--skip-pgbench`)."}

## Idle client connections

RSS growth of the pooler process per client connection that logged in and stays idle (\`idle-conns.mjs\`),
read a few seconds after the logins and again, on a fresh run, after a minute: right after 10,000 logins V8
still holds the heap the burst grew. On Node 20 its memory reducer returned that 15–30 s later; on
Node 24 the reducer reads the zero allocation rate of V8's C++ heap, which nothing here allocates on, as a
high one, and waits for its 100-s watchdog, so the minute-later reading still holds it (README, issue 6).

${results.idle.length ? idleTable : "Not run."}
`;
}
