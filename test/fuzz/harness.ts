// Runs fuzz cases of every target against a running pooler, many connections at a time, while a
// healthy client runs `SELECT 1` in a loop beside them; reports cases, endings and failures.
import { connect } from "../support/clients.ts";
import { TARGETS, makeCase, type FuzzLogins, type TargetName } from "./cases.ts";
import { WireProbe } from "../support/wire-probe.ts";
import { Rng } from "./rng.ts";
import { judge } from "./verdict.ts";

export interface FuzzOptions {
  port: number;
  logins: FuzzLogins;
  /** The healthy client's URL (another pool than the cases', so their waits are not its). */
  healthyUrl: string;
  seed: number;
  /** Stop starting cases after this long. */
  seconds: number;
  /** Connections in flight at once. */
  concurrency: number;
  /** How long after its last byte a case's connection may stay open: the longest timeout + margin. */
  closeWithinMs: number;
  /** Only this case number (replaying a failure); all in turn when undefined. */
  only?: number;
}

export interface FuzzFailure {
  caseNo: number;
  target: TargetName;
  problem: string;
  label: string;
  /** What the pooler answered. */
  got: string;
}

export interface FuzzReport {
  seed: number;
  durationMs: number;
  cases: Record<TargetName, number>;
  /** How connections ended: SQLSTATE of the FATAL, or "close". */
  endings: Record<string, number>;
  failures: FuzzFailure[];
  healthyQueries: number;
  healthyErrors: string[];
}

/** Each case's randomness comes from the seed and its number alone, so any case replays by itself. */
export function caseRng(seed: number, caseNo: number): Rng {
  return new Rng((seed ^ Math.imul(caseNo + 1, 0x9e3779b1)) >>> 0);
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = {
    seed: o.seed,
    durationMs: 0,
    cases: { startup: 0, auth: 0, framing: 0 },
    endings: {},
    failures: [],
    healthyQueries: 0,
    healthyErrors: [],
  };
  const started = Date.now();
  const stopAt = started + o.seconds * 1000;
  let next = o.only ?? 0;
  const last = o.only ?? Infinity;
  let running = true;
  const healthy = healthyLoop(o.healthyUrl, report, () => running);

  const worker = async (): Promise<void> => {
    while (Date.now() < stopAt && next <= last) {
      const caseNo = next++;
      const target = TARGETS[caseNo % TARGETS.length]!;
      const c = makeCase(target, caseRng(o.seed, caseNo), o.logins);
      report.cases[target]++;
      let problem: string | null;
      let ending: string;
      let got = "";
      try {
        const probe = await WireProbe.open(o.port);
        try {
          const end = await c.run(probe);
          const closed = await probe.waitClosed(o.closeWithinMs);
          ({ problem, ending, got } = judge(probe.received, end, closed));
        } finally {
          probe.destroy();
        }
      } catch (err) {
        ({ problem, ending } = { problem: `the case failed: ${(err as Error).message}`, ending: "?" });
      }
      report.endings[ending] = (report.endings[ending] ?? 0) + 1;
      if (problem !== null) report.failures.push({ caseNo, target, problem, label: c.label, got });
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  running = false;
  await healthy;
  report.durationMs = Date.now() - started;
  return report;
}

async function healthyLoop(url: string, report: FuzzReport, going: () => boolean): Promise<void> {
  const client = await connect(url);
  try {
    while (going()) {
      try {
        await client.query("SELECT 1");
        report.healthyQueries++;
      } catch (err) {
        report.healthyErrors.push((err as Error).message);
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function summary(r: FuzzReport): string {
  const cases = TARGETS.map((t) => `${t} ${r.cases[t]}`).join(", ");
  const endings = Object.entries(r.endings)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
  return (
    `fuzz: cases ${cases}; failures ${r.failures.length}; seed ${r.seed}; ${(r.durationMs / 1000).toFixed(1)} s; ` +
    `endings ${endings}; healthy client ${r.healthyQueries} queries, ${r.healthyErrors.length} errors`
  );
}
