// The app's one watcher of the pooler: while someone has the dashboard open it reads the admin
// console (and the metrics endpoint, if configured) about once a second over one connection, and
// keeps the last couple of minutes. However many tabs poll /admin/pooler/data.json, the pooler sees
// one console session; when nobody has asked for a while it stops and closes that session.
import pg from "pg";
import { readConsole } from "./console.ts";
import { fetchWaitBuckets } from "./histogram.ts";
import { djangoDateTime } from "../date-format.ts";
import { columns, sampleOf, type DashboardData, type Reading, type Sample } from "./samples.ts";

export interface PoolerMonitorOptions {
  /** postgresql://user:password@host:port/pgbouncer (see poolerConsoleUrl in app/config.ts) */
  adminUrl: string;
  /** http://host:port/metrics of the pooler, for the p99 wait */
  metricsUrl?: string | undefined;
  intervalMs?: number;
  /** how much history the page gets */
  windowMs?: number;
  /** polling stops this long after the last request for data */
  idleMs?: number;
  /** for connecting and for each read: a stuck pooler must not stall the page */
  timeoutMs?: number;
}

/**
 * Failed metrics reads in a row that show no warning while earlier histograms are kept: a scrape
 * that fails now and then (a timeout on a busy machine) costs nothing, as the next read's p99
 * spans the gap. More in a row, or a failure with nothing kept, and the p99 is really gone.
 */
const TOLERATED_METRICS_FAILURES = 2;

const CONSOLE_HINT =
  "Check POOLER_ADMIN_URL (by default DATABASE_URL on database pgbouncer): its user must be in the pooler's admin_users or stats_users.";

function message(err: unknown): string {
  // Connecting to "localhost" tries every address and fails with all their errors in one.
  if (err instanceof AggregateError && err.errors.length > 0) return message(err.errors[0]);
  return err instanceof Error ? err.message || err.constructor.name : String(err);
}

export class PoolerMonitor {
  private readonly adminUrl: string;
  private readonly metricsUrl: string | undefined;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly idleMs: number;
  private readonly timeoutMs: number;

  private samples: Sample[] = [];
  private previous: Reading | null = null;
  private error: string | null = null;
  private warning: string | null = null;
  private metricsFailures = 0;
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private lastWatched = 0;
  private closed = false;

  constructor(options: PoolerMonitorOptions) {
    this.adminUrl = options.adminUrl;
    this.metricsUrl = options.metricsUrl;
    this.intervalMs = options.intervalMs ?? 1000;
    this.windowMs = options.windowMs ?? 120_000;
    this.idleMs = options.idleMs ?? 15_000;
    this.timeoutMs = options.timeoutMs ?? 3000;
  }

  /** The data for the page; the first request after a pause starts polling and waits for a sample. */
  async watch(): Promise<DashboardData> {
    this.lastWatched = Date.now();
    if (!this.closed && this.timer === null && this.inFlight === null) this.tick();
    if (this.samples.length === 0 && this.error === null) await this.inFlight;
    return this.view();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
    await this.disconnect();
  }

  private view(): DashboardData {
    const at = this.samples.at(-1)?.at;
    return {
      error: this.error,
      warning: this.warning,
      p99: this.metricsUrl !== undefined,
      sampledAt: at ?? null,
      sampledAtText: at === undefined ? null : djangoDateTime(new Date(at)),
      intervalMs: this.intervalMs,
      windowMs: this.windowMs,
      ...columns(this.samples),
    };
  }

  private tick(): void {
    this.timer = null;
    const started = Date.now();
    this.inFlight = this.poll().finally(() => {
      this.inFlight = null;
      this.schedule(Date.now() - started);
    });
  }

  private schedule(pollMs: number): void {
    if (this.closed) return;
    if (Date.now() - this.lastWatched > this.idleMs) {
      void this.stop();
      return;
    }
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.intervalMs - pollMs));
    // An open dashboard must not keep a stopping process alive.
    this.timer.unref();
  }

  /** Nobody is watching: forget the history, so that the next viewer's rates start afresh. */
  private async stop(): Promise<void> {
    this.samples = [];
    this.previous = null;
    this.error = null;
    this.warning = null;
    this.metricsFailures = 0;
    await this.disconnect();
  }

  private async poll(): Promise<void> {
    try {
      const client = await this.connection();
      const [pools, waits] = await Promise.all([readConsole(client), this.readWaits()]);
      const reading: Reading = { at: Date.now(), console: pools, waits };
      this.samples.push(sampleOf(reading, this.previous));
      // A metrics read that failed (its timeout, an error) keeps the last
      // histograms: the next one's p99 spans both intervals, where alternate failures left none.
      this.previous =
        reading.waits === null && this.previous ? { ...reading, waits: this.previous.waits } : reading;
      this.error = null;
      const oldest = reading.at - this.windowMs;
      while (this.samples[0]!.at < oldest) this.samples.shift();
    } catch (err) {
      this.error = `The pooler's admin console could not be read: ${message(err)}. ${CONSOLE_HINT}`;
      // The next attempt reconnects; rates restart from there instead of spanning the outage.
      this.previous = null;
      await this.disconnect();
    }
  }

  /** The histograms, or null (and a warning) when they are not configured or not reachable. */
  private async readWaits(): Promise<Reading["waits"]> {
    if (this.metricsUrl === undefined) return null;
    try {
      const waits = await fetchWaitBuckets(this.metricsUrl, this.timeoutMs);
      this.warning = null;
      this.metricsFailures = 0;
      return waits;
    } catch (err) {
      this.metricsFailures += 1;
      if (!this.previous?.waits || this.metricsFailures > TOLERATED_METRICS_FAILURES) {
        this.warning = `The pooler's metrics could not be read, so there is no p99 wait: ${message(err)}`;
      }
      return null;
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      connectionString: this.adminUrl,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      application_name: "pooler-dashboard",
    });
    // A dropped session surfaces at the next query; this only keeps the process alive meanwhile.
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.client = client;
    return client;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}
