// The Prometheus endpoint (METRICS_PORT, off by default): GET /metrics in the text format. Names and
// labels are those of prometheus-community/pgbouncer_exporter (collector.go), read from the same
// rows as the console's SHOW commands, so dashboards built on the exporter work unchanged. Two
// histograms PgBouncer cannot give are added: how long clients wait for a server and how long
// transactions take.
import http from "node:http";
import { Readable, pipeline } from "node:stream";
import { setImmediate } from "node:timers/promises";
import type net from "node:net";
import { Registry, collectDefaultMetrics } from "prom-client";
import { ChunkedHistogram, SampledFamily, type Sample } from "./metric-chunks.ts";
import { PGBOUNCER_VERSION } from "./version.ts";
import {
  databaseRows,
  databaseStats,
  listRows,
  poolRows,
  type DatabaseRow,
  type DatabaseStats,
  type ListRow,
  type PoolRow,
} from "./admin/views.ts";
import { bindAll } from "./listener.ts";
import type { Pool } from "./pool.ts";
import type { Pooler } from "./pooler.ts";
import type { Counters } from "./stats.ts";

const NS = "pgbouncer";
const METRICS_PATH = "/metrics";

/**
 * Connections the metrics port keeps at once (per listen address); more are closed as accepted. A
 * scraper needs one: without a cap, idle connections to this port would take the descriptors the
 * pooler needs for its clients and servers (PgBouncer's exporter is a process of its own).
 */
export const METRICS_MAX_CONNECTIONS = 16;
/** A metrics connection silent this long is closed (keep-alive ones after Node's 5 s already). */
export const IDLE_TIMEOUT_MS = 10_000;

/** A scrape's text in pieces, each small enough to encode without holding clients up. */
interface Body {
  pieces: string[];
  bytes: number;
}

/**
 * What one scrape reads, taken once so the families read from one view agree. Each view is taken
 * in one go (as the exporter's are a console query each), with the event loop let go between them:
 * at 5,000 pools each is tens of ms.
 */
interface Snapshot {
  databases: DatabaseRow[];
  /** SHOW POOLS' rows, those of one database and user together: one series is theirs. */
  pools: PoolRow[][];
  stats: DatabaseStats[];
  lists: ListRow[];
}

type Labels = Record<string, string>;

const POOL_GAUGES: readonly [column: keyof PoolRow, metric: string, help: string][] = [
  [
    "cl_active",
    "client_active_connections",
    "Client connections linked to server connection and able to process queries, shown as connection",
  ],
  [
    "cl_active_cancel_req",
    "client_active_cancel_connections",
    "Client connections that have forwarded query cancellations to the server and are waiting for the server response",
  ],
  [
    "cl_waiting",
    "client_waiting_connections",
    "Client connections waiting on a server connection, shown as connection",
  ],
  [
    "cl_waiting_cancel_req",
    "client_waiting_cancel_connections",
    "Client connections that have not forwarded query cancellations to the server yet",
  ],
  [
    "sv_active",
    "server_active_connections",
    "Server connections linked to a client connection, shown as connection",
  ],
  [
    "sv_active_cancel",
    "server_active_cancel_connections",
    "Server connections that are currently forwarding a cancel request.",
  ],
  [
    "sv_being_canceled",
    "server_being_canceled_connections",
    "Servers that normally could become idle but are waiting to do so until all in-flight cancel requests have completed that were sent to cancel a query on this server.",
  ],
  [
    "sv_idle",
    "server_idle_connections",
    "Server connections idle and ready for a client query, shown as connection",
  ],
  [
    "sv_used",
    "server_used_connections",
    "Server connections idle more than server_check_delay, needing server_check_query, shown as connection",
  ],
  [
    "sv_tested",
    "server_testing_connections",
    "Server connections currently running either server_reset_query or server_check_query, shown as connection",
  ],
  [
    "cl_pinned",
    "client_pinned_connections",
    "Client connections pinned to their server by session state (locks, LISTEN, ...); not in PgBouncer",
  ],
  [
    "sv_login",
    "server_login_connections",
    "Server connections currently in the process of logging in, shown as connection",
  ],
];

const DATABASE_GAUGES: readonly [column: keyof DatabaseRow, metric: string, help: string][] = [
  ["pool_size", "pool_size", "Maximum number of server connections"],
  ["reserve_pool_size", "reserve_pool", "Maximum number of additional connections for this database"],
  ["max_connections", "max_connections", "Maximum number of allowed connections for this database"],
  ["current_connections", "current_connections", "Current number of connections for this database"],
  ["paused", "paused", "1 if this database is currently paused, else 0"],
  ["disabled", "disabled", "1 if this database is currently disabled, else 0"],
];

/** SHOW STATS_TOTALS as the exporter maps it: the counter, its scale to the metric's unit, the metric. */
const STATS_COUNTERS: readonly [counter: keyof Counters, scale: number, metric: string, help: string][] = [
  ["queryCount", 1, "queries_pooled_total", "Total number of SQL queries pooled"],
  [
    "queryTimeUs",
    1e-6,
    "queries_duration_seconds_total",
    "Total number of seconds spent by pgbouncer when actively connected to PostgreSQL, executing queries",
  ],
  [
    "bytesReceived",
    1,
    "received_bytes_total",
    "Total volume in bytes of network traffic received by pgbouncer, shown as bytes",
  ],
  [
    "bytesSent",
    1,
    "sent_bytes_total",
    "Total volume in bytes of network traffic sent by pgbouncer, shown as bytes",
  ],
  ["waitTimeUs", 1e-6, "client_wait_seconds_total", "Time spent by clients waiting for a server in seconds"],
  ["xactCount", 1, "sql_transactions_pooled_total", "Total number of SQL transactions pooled"],
  [
    "xactTimeUs",
    1e-6,
    "server_in_transaction_seconds_total",
    "Total number of seconds spent by pgbouncer when connected to PostgreSQL in a transaction, either idle in transaction or executing queries",
  ],
  [
    "clientParseCount",
    1,
    "client_parses_total",
    "Total number of prepared statement Parse messages received from clients",
  ],
  [
    "serverParseCount",
    1,
    "server_parses_total",
    "Total number of prepared statement Parse messages sent by pgbouncer to PostgreSQL",
  ],
  [
    "bindCount",
    1,
    "binds_total",
    "Total number of prepared statements readied for execution with a Bind message",
  ],
];

/** SHOW LISTS rows the exporter exports, and its names for them. */
const LIST_GAUGES: ReadonlyMap<string, [metric: string, help: string]> = new Map([
  ["databases", ["databases", "Count of databases"]],
  ["users", ["users", "Count of users"]],
  ["pools", ["pools", "Count of pools"]],
  ["free_clients", ["free_clients", "Count of free clients"]],
  ["used_clients", ["used_clients", "Count of used clients"]],
  ["login_clients", ["login_clients", "Count of clients in login state"]],
  ["free_servers", ["free_servers", "Count of free servers"]],
  ["used_servers", ["used_servers", "Count of used servers"]],
  ["dns_names", ["cached_dns_names", "Count of DNS names in the cache"]],
  ["dns_zones", ["cached_dns_zones", "Count of DNS zones in the cache"]],
  ["dns_queries", ["in_flight_dns_queries", "Count of in-flight DNS queries"]],
]);

/** Client waits are measured in milliseconds; most are 0 when the pool has idle servers. */
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const XACT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const POOL_LABELS = ["database", "user"] as const;

/**
 * SHOW POOLS' rows by the exporter's labels. Two pools share a database and user once a RELOAD
 * renames the entry's forced user to one whose own pool of the entry is there (PgBouncer 1.18 lists
 * both as well): their series is both of them, not whichever row came last.
 */
function bySeries(rows: PoolRow[]): PoolRow[][] {
  const series = new Map<string, PoolRow[]>();
  for (const row of rows) {
    const key = `${row.database}\u0000${row.user}`;
    const same = series.get(key);
    if (same) same.push(row);
    else series.set(key, [row]);
  }
  return [...series.values()];
}

/** Label values as the exporter makes them: NULL becomes "". */
function labelsOf<R>(row: R, names: readonly (keyof R & string)[]): Labels {
  return Object.fromEntries(names.map((n) => [n, row[n] === null ? "" : String(row[n])]));
}

export class MetricsServer {
  private readonly registry = new Registry();
  private current: Snapshot | null = null;
  private rendering: Promise<Body> | null = null;
  /** The exporter's families, then the histograms: each rendered a chunk of series at a time. */
  private readonly chunked: { render(): Promise<string> }[] = [];
  private readonly waitHistogram: ChunkedHistogram<"database" | "user">;
  private readonly xactHistogram: ChunkedHistogram<"database" | "user">;

  /** One per listen_addr address. */
  private servers: http.Server[] = [];

  private constructor(private readonly pooler: Pooler) {
    collectDefaultMetrics({ register: this.registry });
    this.defineExporterMetrics();
    const histogram = (
      name: string,
      help: string,
      buckets: number[],
    ): ChunkedHistogram<"database" | "user"> => {
      const h = new ChunkedHistogram({
        name: `${NS}_pools_${name}`,
        help,
        buckets,
        labelNames: ["database", "user"],
      });
      this.chunked.push(h);
      return h;
    };
    this.waitHistogram = histogram(
      "client_wait_seconds",
      "Time clients waited for a server connection, in seconds",
      WAIT_BUCKETS,
    );
    this.xactHistogram = histogram(
      "transaction_duration_seconds",
      "Duration of transactions on server connections, in seconds",
      XACT_BUCKETS,
    );
  }

  /** On every listen_addr address, as the pooler's own port. */
  static async start(pooler: Pooler, listenAddr: string, port: number): Promise<MetricsServer> {
    const metrics = new MetricsServer(pooler);
    const make = (): http.Server => {
      const server = http.createServer(
        // a request must arrive whole within Prometheus' default scrape timeout
        { headersTimeout: IDLE_TIMEOUT_MS, requestTimeout: IDLE_TIMEOUT_MS },
        (req, res) => void metrics.handle(req, res),
      );
      server.maxConnections = METRICS_MAX_CONNECTIONS;
      // Node's request timeouts never close a connection that sends nothing at all: this does
      server.timeout = IDLE_TIMEOUT_MS;
      return server;
    };
    metrics.servers = await bindAll(make, listenAddr, port, pooler.log);
    return metrics;
  }

  get port(): number {
    return (this.servers[0]!.address() as net.AddressInfo).port;
  }

  /** Feeds the pool's waits and transactions into the histograms, from now on. */
  observe(pool: Pool): void {
    const labels = { database: pool.db.name, user: pool.user };
    pool.stats.observer = { wait: this.waitHistogram.track(labels), xact: this.xactHistogram.track(labels) };
  }

  /**
   * A pool that is gone (a forgotten auto-database) or renamed: its histograms go too, unless another
   * pool of its database and user feeds them still.
   */
  forget(pool: Pool): void {
    const labels = { database: pool.db.name, user: pool.user };
    this.waitHistogram.release(labels);
    this.xactHistogram.release(labels);
    // anything it still observed would bring its series back, in a shard a new pool of its name may not use
    pool.stats.observer = null;
  }

  async close(): Promise<void> {
    const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.servers) s.closeAllConnections();
    await Promise.all(closed);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // URL.parse, not new URL: a target such as "//[" would throw, and take the pooler down with it
    const path = URL.parse(req.url ?? "/", "http://localhost")?.pathname;
    if (path !== METRICS_PATH) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end(`not found; metrics are at ${METRICS_PATH}\n`);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "Content-Type": "text/plain", Allow: "GET, HEAD" }).end("method not allowed\n");
      return;
    }
    let body: Body;
    try {
      body = await this.render();
    } catch (err) {
      this.pooler.log.error({ err }, "metrics scrape failed");
      res.writeHead(500, { "Content-Type": "text/plain" }).end("metrics scrape failed\n");
      return;
    }
    // A scraper that went away while the body was made (its timeout shorter than the scrape) is owed
    // nothing, and piping to its closed response would throw, an unhandled rejection that ends the pooler.
    if (res.destroyed) return;
    res.writeHead(200, { "Content-Type": this.registry.contentType, "Content-Length": body.bytes });
    if (req.method === "HEAD") res.end();
    // a piece at a time as the socket takes them: 31 MB (5,000 pools) in one go is tens of ms of
    // encoding. A scraper that goes away meanwhile ends the stream: there is nothing to report.
    else pipeline(Readable.from(body.pieces), res, () => undefined);
  }

  /** Scrapes that come while one is made get its body, read from the same snapshot. */
  private render(): Promise<Body> {
    this.rendering ??= this.renderFamilies().finally(() => {
      this.current = null;
      this.rendering = null;
    });
    return this.rendering;
  }

  /**
   * registry.metrics()'s text, one metric family at a time with the event loop let go between them,
   * and the families with a series per pool or database a chunk at a time: with thousands of pools a
   * scrape is seconds of CPU, which registry.metrics() spends in one go while every client waits
   * (5,000 pools: a SELECT 1 held up 2 s). One scrape renders at a time (render()): the chunked
   * families' scratch metrics are not shared.
   */
  private async renderFamilies(): Promise<Body> {
    const body: Body = { pieces: [], bytes: 0 };
    const add = (family: string): void => {
      // registry.metrics() parts families with an empty line and ends with a newline
      const piece = `${body.pieces.length === 0 ? "" : "\n"}${family}\n`;
      body.pieces.push(piece);
      body.bytes += Buffer.byteLength(piece);
    };
    for (const { name } of this.registry.getMetricsAsArray()) {
      add(await this.registry.getSingleMetricAsString(name));
      await setImmediate();
    }
    this.current = await this.readSnapshot();
    for (const family of this.chunked) add(await family.render());
    return body;
  }

  private async readSnapshot(): Promise<Snapshot> {
    const databases = databaseRows(this.pooler);
    await setImmediate();
    const pools = bySeries(poolRows(this.pooler));
    await setImmediate();
    const stats = databaseStats(this.pooler);
    await setImmediate();
    return { databases, pools, stats, lists: listRows(this.pooler) };
  }

  /** The snapshot of the scrape being rendered; the families read it only while one is. */
  private snapshot(): Snapshot {
    if (!this.current) throw new Error("metrics read outside a scrape");
    return this.current;
  }

  /** A gauge whose samples are taken from the snapshot at each scrape. */
  private gauge(
    name: string,
    help: string,
    labelNames: readonly string[],
    samples: (s: Snapshot) => Sample[],
  ): void {
    this.chunked.push(new SampledFamily("gauge", { name, help, labelNames }, () => samples(this.snapshot())));
  }

  private defineExporterMetrics(): void {
    const version = `PgBouncer ${PGBOUNCER_VERSION}`;
    this.gauge(`${NS}_up`, "The pgbouncer scrape succeeded", [], () => [[{}, 1]]);
    this.gauge(`${NS}_version_info`, "The pgbouncer version info", ["version"], () => [[{ version }, 1]]);
    for (const [list, [metric, help]] of LIST_GAUGES) {
      this.gauge(`${NS}_${metric}`, help, [], (s) =>
        s.lists.filter((r) => r.list === list).map((r) => [{}, r.items]),
      );
    }
    this.gauge(
      `${NS}_config_max_client_connections`,
      "Config maximum number of client connections",
      [],
      () => [[{}, this.pooler.config.maxClientConn]],
    );
    this.gauge(
      `${NS}_config_max_user_connections`,
      "Config maximum number of server connections per user",
      [],
      () => [[{}, this.pooler.config.maxUserConnections]],
    );

    const dbLabels = ["name", "host", "port", "database", "force_user", "pool_mode"] as const;
    for (const [column, metric, help] of DATABASE_GAUGES) {
      this.gauge(`${NS}_databases_${metric}`, help, dbLabels, (s) =>
        s.databases.map((r) => [labelsOf(r, dbLabels), Number(r[column])]),
      );
    }

    // the connections of pools that share a series add up; their oldest waiting client is the older one
    const poolGauge = (metric: string, help: string, value: (rows: PoolRow[]) => number): void =>
      this.gauge(`${NS}_pools_${metric}`, help, POOL_LABELS, (s) =>
        s.pools.map((rows) => [labelsOf(rows[0]!, POOL_LABELS), value(rows)]),
      );
    for (const [column, metric, help] of POOL_GAUGES) {
      poolGauge(metric, help, (rows) => rows.reduce((sum, r) => sum + Number(r[column]), 0));
    }
    poolGauge("client_maxwait_seconds", "Age of oldest unserved client connection, shown as second", (rows) =>
      Math.max(...rows.map((r) => r.maxwait + r.maxwait_us / 1e6)),
    );

    for (const [counter, scale, metric, help] of STATS_COUNTERS) {
      const family = { name: `${NS}_stats_totals_${metric}`, help, labelNames: ["database"] };
      this.chunked.push(
        new SampledFamily("counter", family, () =>
          this.snapshot().stats.map((db) => [{ database: db.database }, db.totals[counter] * scale]),
        ),
      );
    }
  }
}
