// Per-pool counters with PgBouncer's meaning (SHOW STATS): totals since start, averages over the
// last stats_period, and the periodic "stats:" log line (log_stats). Times are microseconds, as
// PgBouncer prints them.
import { timerDelay } from "./clock.ts";
import type { Logger } from "./log.ts";

/** What PgBouncer counts per pool (its PgStats). */
export interface Counters {
  serverAssignments: number;
  xactCount: number;
  queryCount: number;
  /** From clients. */
  bytesReceived: number;
  /** To clients. */
  bytesSent: number;
  xactTimeUs: number;
  queryTimeUs: number;
  /** Time clients waited for a server. */
  waitTimeUs: number;
  /** Named statements clients prepared (their Parse messages), the pooler prepared on servers, and Binds of them. */
  clientParseCount: number;
  serverParseCount: number;
  bindCount: number;
}

const COUNTER_KEYS: readonly (keyof Counters)[] = [
  "serverAssignments",
  "xactCount",
  "queryCount",
  "bytesReceived",
  "bytesSent",
  "xactTimeUs",
  "queryTimeUs",
  "waitTimeUs",
  "clientParseCount",
  "serverParseCount",
  "bindCount",
];

export function zeroCounters(): Counters {
  return {
    serverAssignments: 0,
    xactCount: 0,
    queryCount: 0,
    bytesReceived: 0,
    bytesSent: 0,
    xactTimeUs: 0,
    queryTimeUs: 0,
    waitTimeUs: 0,
    clientParseCount: 0,
    serverParseCount: 0,
    bindCount: 0,
  };
}

export function sumCounters(all: Iterable<Counters>): Counters {
  const total = zeroCounters();
  for (const c of all) for (const k of COUNTER_KEYS) total[k] += c[k];
  return total;
}

/**
 * PgBouncer's calc_average: counts and bytes per second over `elapsedUs`, times per transaction,
 * query or assignment in that window, truncated to integers as PgBouncer prints them.
 */
export function averages(current: Counters, older: Counters, elapsedUs: number): Counters {
  const avg = zeroCounters();
  if (elapsedUs <= 0) return avg;
  const delta = (k: keyof Counters): number => current[k] - older[k];
  const perSecond = (k: keyof Counters): number => Math.floor((delta(k) * 1e6) / elapsedUs);
  const perEvent = (k: keyof Counters, events: number): number =>
    events > 0 ? Math.floor(delta(k) / events) : 0;
  avg.serverAssignments = perSecond("serverAssignments");
  avg.xactCount = perSecond("xactCount");
  avg.queryCount = perSecond("queryCount");
  avg.bytesReceived = perSecond("bytesReceived");
  avg.bytesSent = perSecond("bytesSent");
  avg.clientParseCount = perSecond("clientParseCount");
  avg.serverParseCount = perSecond("serverParseCount");
  avg.bindCount = perSecond("bindCount");
  avg.xactTimeUs = perEvent("xactTimeUs", delta("xactCount"));
  avg.queryTimeUs = perEvent("queryTimeUs", delta("queryCount"));
  avg.waitTimeUs = perEvent("waitTimeUs", delta("serverAssignments"));
  return avg;
}

/** What a server keeps of the requests it runs for its client (ServerConnection). */
export interface ServerRequests {
  /** When its current request and transaction started (performance.now() ms). */
  readonly queryStart: number;
  readonly xactStart: number;
  readonly txStatus: string;
}

/** Sees every wait and transaction as it is counted (the /metrics histograms), in seconds. */
export interface StatsObserver {
  wait(seconds: number): void;
  xact(seconds: number): void;
}

export class PoolStats implements Counters {
  serverAssignments = 0;
  xactCount = 0;
  queryCount = 0;
  bytesReceived = 0;
  bytesSent = 0;
  xactTimeUs = 0;
  queryTimeUs = 0;
  waitTimeUs = 0;
  clientParseCount = 0;
  serverParseCount = 0;
  bindCount = 0;
  /** The totals at the last stats_period tick, and at the one before: averages start there. */
  private newer: Counters = zeroCounters();
  older: Counters = zeroCounters();
  observer: StatsObserver | null = null;

  /** A client got a server after waiting `waitMs` in the queue. */
  recordAssignment(waitMs: number): void {
    this.serverAssignments++;
    this.recordWait(waitMs);
  }

  /**
   * A client waited `waitMs` for a server: in the queue, or logging in for the pool's first one,
   * which PgBouncer counts in wait_time too, though no server is assigned to it then.
   */
  recordWait(waitMs: number): void {
    // whole microseconds, as PgBouncer counts: performance.now() differences have fractions
    this.waitTimeUs += Math.round(waitMs * 1000);
    this.observer?.wait(waitMs / 1000);
  }

  /** `server`'s request has ended (ReadyForQuery, nothing owed), and its transaction with it if it is idle. */
  recordRequestEnded(server: ServerRequests): void {
    const now = performance.now();
    this.queryTimeUs += Math.round((now - server.queryStart) * 1000);
    if (server.txStatus === "I") this.recordXactTime(Math.round((now - server.xactStart) * 1000));
  }

  /** A transaction ended after `durationUs`; it was counted as it started, as PgBouncer counts it. */
  private recordXactTime(durationUs: number): void {
    this.xactTimeUs += durationUs;
    this.observer?.xact(durationUs / 1e6);
  }

  snapshot(): Counters {
    const copy = zeroCounters();
    for (const k of COUNTER_KEYS) copy[k] = this[k];
    return copy;
  }

  /** A stats_period tick. */
  rotate(): void {
    this.older = this.newer;
    this.newer = this.snapshot();
  }
}

function nowUs(): number {
  return Date.now() * 1000;
}

/** What the stats timer reads; the settings are read at each tick, so SET stats_period applies. */
export interface StatsSource {
  readonly config: { readonly statsPeriod: number; readonly logStats: boolean };
  readonly log: Logger;
  poolStats(): Iterable<PoolStats>;
}

/** The stats_period clock: rotates every pool's snapshots and writes the "stats:" line. */
export class StatsPeriod {
  /** When the pools' `older` snapshots were taken; PgBouncer starts one second in the past. */
  private olderStamp = nowUs() - 1e6;
  private newerStamp = nowUs();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly source: StatsSource) {}

  start(): void {
    this.timer = null;
    const period = this.source.config.statsPeriod;
    // 0 stops the clock (PgBouncer 1.18 then writes its line once, at start): a zero timeout
    // would tick on every turn of the event loop
    if (period <= 0 || this.stopped) return;
    this.timer = setTimeout(() => this.tick(), timerDelay(period));
    this.timer.unref();
  }

  /** After SET or RELOAD: a clock stopped by stats_period = 0 starts again once it is not 0. */
  settingsChanged(): void {
    if (this.timer === null) this.start();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Averages of `current` since the older snapshot (SHOW STATS, STATS_AVERAGES, TOTALS). */
  averagesSince(current: Counters, older: Counters): Counters {
    return averages(current, older, nowUs() - this.olderStamp);
  }

  private tick(): void {
    this.olderStamp = this.newerStamp;
    this.newerStamp = nowUs();
    const pools = [...this.source.poolStats()];
    for (const p of pools) p.rotate();
    if (this.source.config.logStats) {
      const avg = this.averagesSince(sumCounters(pools), sumCounters(pools.map((p) => p.older)));
      this.source.log.info(statsLine(avg));
    }
    this.start();
  }
}

/** PgBouncer 1.25's log line. */
export function statsLine(avg: Counters): string {
  return (
    `stats: ${avg.xactCount} xacts/s, ${avg.queryCount} queries/s, ` +
    `${avg.clientParseCount} client parses/s, ${avg.serverParseCount} server parses/s, ${avg.bindCount} binds/s, ` +
    `in ${avg.bytesReceived} B/s, out ${avg.bytesSent} B/s, ` +
    `xact ${avg.xactTimeUs} us, query ${avg.queryTimeUs} us, wait ${avg.waitTimeUs} us`
  );
}
