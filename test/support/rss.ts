// A process's resident memory as Linux reports it (/proc/<pid>/status), sampled while a test runs.
import fs from "node:fs";

/** VmRSS and VmHWM (the peak since start or since the last resetPeak), in bytes. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0; false where /proc does not allow it). */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export interface RssSampler {
  /** RSS when sampling started. */
  readonly baseline: number;
  /** Stops sampling; the highest RSS seen (samples, and VmHWM when the kernel could reset it). */
  stop(): number;
}

/** Samples `pid`'s RSS every `everyMs` from now on. */
export function sampleRss(pid: number, everyMs = 50): RssSampler {
  const exactPeak = resetPeak(pid);
  const baseline = memoryOf(pid).rss;
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, memoryOf(pid).rss)), everyMs);
  return {
    baseline,
    stop() {
      clearInterval(timer);
      const now = memoryOf(pid);
      return Math.max(peak, now.rss, exactPeak ? now.hwm : 0);
    },
  };
}
