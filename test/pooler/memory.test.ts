// Bounded memory (issue 7): a slow reader of a large result, COPY out to a slow reader, COPY in as
// fast as the client can write and COPY in to a server that keeps stalling — at least 200 MiB
// each through the pooler running as a process of its own, whose RSS is sampled every 50 ms, every
// byte checked against what PostgreSQL sends directly — and
// a client that pipelines messages the pooler answers itself without ever reading the answers.
//
// The bound, 128 MiB over the RSS of the idle, warmed-up pooler, for every case in turn: what the
// pooler itself holds in flight is small (per direction one read chunk of at most 64 kB, the
// sockets' stream buffers and the kernel's). Clients read into buffers the pooler reuses
// (client-reads.ts, read-buffer.ts), but a read is still a new Buffer wherever a queued write keeps
// the buffer (a copy), and in what Node allocates for its own streams (TLS): garbage as soon as it
// is forwarded. Node 24's V8 frees those only in a full collection, which it starts once about 64
// MiB of such external memory has been allocated since the last, and reads go on while it marks
// and sweeps: 10-93 MiB here for 200 MiB when every client read was a new Buffer (Node 20 also
// scavenged under external-memory pressure, 18-42 MiB), and the same whatever the size (a bare Node
// pipe: 84-112 MiB from 100 MiB to 3.2 GiB); 8-19 MiB with the shared client buffer. A pooler that
// buffered what it cannot pass on would grow by the payload, 200 MiB and more.
import crypto from "node:crypto";
import type net from "node:net";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { close, copyData, copyDone, parse, query, sync } from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { spawnPooler, type PoolerProcess } from "../support/pooler-process.ts";
import { freePort } from "../support/ports.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { RawClient } from "../support/protocol.ts";
import { memoryOf, sampleRss } from "../support/rss.ts";
import { waitFor } from "../support/wait.ts";

const MiB = 1 << 20;
const BOUND = 128 * MiB;
const LINE = 1000;
/** Rows of LINE bytes: 210,000 make just over 200 MiB. */
const ROWS = 210_000;
/** The slow reader takes this much every READ_TICK_MS (~40 MB/s: a fraction of what PostgreSQL sends here). */
const READ_PER_TICK = 400 * 1024;
const READ_TICK_MS = 10;
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);

/**
 * SQL for a text of `length` characters that differs from row to row (series `g`): a mixed-up byte
 * shows. It is rpad(g || ':', length, md5(g::text)) byte for byte, without rpad's walk over every
 * character it writes (UTF-8): PostgreSQL made 200 MiB in 7 s that way, 2 s this way.
 */
function varied(length: string): string {
  const fill = `(${length}) - length(g::text) - 1`;
  return `g || ':' || repeat(md5(g::text), (${fill}) / 32) || left(md5(g::text), (${fill}) % 32)`;
}

/** What a reader received: its size and its SHA-256, to compare with what PostgreSQL sends directly. */
interface Received {
  bytes: number;
  digest: string;
}

/**
 * A slow reader also stops reading this long after its first bytes, as a client busy elsewhere: the
 * sender must then wait for it however fast it produces (a COPY on a slow machine makes less than
 * READ_PER_TICK a tick, and PostgreSQL was then never seen waiting).
 */
const STALL_MS = 3000;

/**
 * Reads the replies to what was just sent, up to ReadyForQuery, at most `perTick` bytes every
 * READ_TICK_MS (a finite rate: stalling STALL_MS after the first bytes).
 */
function readReplies(sock: net.Socket, perTick = READ_PER_TICK): Promise<Received> {
  return new Promise((resolve) => {
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    let inTick = 0;
    let tail = Buffer.alloc(0);
    let stalledUntil = 0;
    const timer = setInterval(() => {
      inTick = 0;
      if (Date.now() >= stalledUntil) sock.resume();
    }, READ_TICK_MS);
    sock.on("data", (d: Buffer) => {
      if (bytes === 0 && Number.isFinite(perTick)) {
        stalledUntil = Date.now() + STALL_MS;
        sock.pause();
      }
      hash.update(d);
      bytes += d.length;
      inTick += d.length;
      tail = Buffer.concat([tail, d.subarray(-6)]).subarray(-6);
      if (tail.equals(READY_IDLE)) {
        clearInterval(timer);
        sock.removeAllListeners("data");
        resolve({ bytes, digest: hash.digest("hex") });
      } else if (inTick >= perTick) sock.pause();
    });
  });
}

describe("pooler memory stays bounded", () => {
  let server: PrivatePostgres;
  let observer: pg.Client;
  let pooler: PoolerProcess;
  let url: string;
  /** The pooler's RSS once warm and idle, before any case. */
  let baseline: number;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    observer = await connect(server.url("postgres"));
    // COPY targets that keep nothing (the disk is not under test): rows are counted, optionally
    // with a pause every $1 rows, and dropped.
    await observer.query(`
      CREATE SEQUENCE memory_rows;
      CREATE FUNCTION memory_discard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('memory_rows') % TG_ARGV[0]::int = 0 THEN PERFORM pg_sleep(TG_ARGV[1]::float8); END IF;
        RETURN NULL;
      END $$;
      CREATE TABLE memory_fast (line text);
      CREATE TRIGGER discard BEFORE INSERT ON memory_fast FOR EACH ROW EXECUTE FUNCTION memory_discard(1000000000, 0);
      CREATE TABLE memory_stalling (line text);
      CREATE TRIGGER discard BEFORE INSERT ON memory_stalling FOR EACH ROW EXECUTE FUNCTION memory_discard(2000, 0.02);
    `);
    const port = await freePort();
    pooler = spawnPooler([], {
      DATABASE_URL: server.url("postgres"),
      LISTEN_PORT: String(port),
      POOL_MODE: "transaction",
      LOG_CONNECTIONS: "0",
      LOG_DISCONNECTIONS: "0",
    });
    await waitFor(() => pooler.output().includes('"listening"'), "the pooler to listen", 15_000);
    url = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;
    // warm: a server in the pool, the code paths compiled
    const c = await RawClient.connect(url);
    await c.exchange([query("SELECT 1")]);
    await c.close();
    baseline = memoryOf(pooler.child.pid!).rss;
  });
  afterAll(async () => {
    pooler?.child.kill("SIGKILL");
    await observer?.end();
    await server?.stop();
  });

  /** What a case moved, and how often the slow side was seen holding the fast one back. */
  interface Outcome {
    bytes: number;
    heldBack: number;
  }

  /** Runs `fn` while sampling the pooler's RSS; asserts and prints the growth. */
  async function measured(what: string, heldBackAs: string, fn: () => Promise<Outcome>): Promise<void> {
    const started = Date.now();
    const rss = sampleRss(pooler.child.pid!);
    const { bytes, heldBack } = await fn();
    const peak = rss.stop();
    const secs = (Date.now() - started) / 1000;
    const mib = (n: number): string => (n / MiB).toFixed(1);
    console.log(
      `memory, ${what}: ${(bytes / MiB).toFixed(0)} MiB in ${secs.toFixed(1)} s ` +
        `(${(bytes / MiB / secs).toFixed(0)} MiB/s, ${heldBack} ${heldBackAs}); pooler RSS baseline ${mib(baseline)} MiB, ` +
        `${mib(rss.baseline)} MiB before, peak ${mib(peak)} MiB (+${mib(peak - baseline)} MiB, bound +${BOUND / MiB})`,
    );
    expect(bytes).toBeGreaterThanOrEqual(200 * MiB);
    // the slow side really was the bottleneck, so the pooler had something to hold
    expect(heldBack).toBeGreaterThan(0);
    expect(peak - baseline).toBeLessThan(BOUND);
  }

  /**
   * From now until the returned function is called: how many times (sampled every 100 ms)
   * PostgreSQL was seen waiting to write to the pooler, i.e. held back by the slow reader.
   */
  function watchClientWrites(): () => number {
    let seen = 0;
    let sampling = false;
    const timer = setInterval(() => {
      if (sampling) return;
      sampling = true;
      observer
        .query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'ClientWrite'")
        .then((r) => (seen += r.rows[0].n > 0 ? 1 : 0))
        .finally(() => (sampling = false));
    }, 100);
    return () => {
      clearInterval(timer);
      return seen;
    };
  }

  /** Sends `sql` to `target` and reads the replies, at most `perTick` bytes a tick. */
  async function read(target: string, sql: string, perTick?: number): Promise<Received> {
    const sock = (await RawClient.connect(target)).release();
    try {
      const received = readReplies(sock, perTick);
      sock.write(query(sql));
      return await received;
    } finally {
      sock.destroy();
    }
  }

  /**
   * Sends `sql` through the pooler and reads its replies slowly, watching PostgreSQL wait for the
   * reader; the bytes must be exactly those PostgreSQL sends a fast reader directly (the pooler
   * reads servers into reused buffers: a slice still queued for the slow client must survive).
   */
  async function slowRead(sql: string): Promise<Outcome> {
    const waits = watchClientWrites();
    const pooled = await read(url, sql);
    const heldBack = waits();
    const direct = await read(server.url("postgres"), sql, Infinity);
    expect(pooled).toEqual(direct);
    return { bytes: pooled.bytes, heldBack };
  }

  it(
    "a slow reader of a large result (rows of 1 kB and of 16 MiB)",
    () =>
      measured("SELECT to a slow reader", "samples of PostgreSQL waiting on ClientWrite", async () => {
        // four rows of 16 MiB stream through the pooler in pieces, the others pass whole
        const rows = 150_000;
        const outcome = await slowRead(
          `SELECT ${varied(`CASE WHEN g % ${rows / 4} = 0 THEN 16 << 20 ELSE ${LINE} END`)} FROM generate_series(1, ${rows}) g`,
        );
        // every DataRow arrived: type(1) + len(4) + ncols(2) + collen(4) + text
        expect(outcome.bytes).toBeGreaterThan((rows - 4) * (11 + LINE) + 4 * (11 + (16 << 20)));
        return outcome;
      }),
    60_000,
  );

  it(
    "COPY TO STDOUT to a slow reader",
    () =>
      measured(
        "COPY TO STDOUT to a slow reader",
        "samples of PostgreSQL waiting on ClientWrite",
        async () => {
          const outcome = await slowRead(
            `COPY (SELECT ${varied(String(LINE))} FROM generate_series(1, ${ROWS}) g) TO STDOUT`,
          );
          // every CopyData arrived: type(1) + len(4) + line + "\n"
          expect(outcome.bytes).toBeGreaterThan(ROWS * (6 + LINE));
          return outcome;
        },
      ),
    60_000,
  );

  /** COPY FROM STDIN of ROWS lines, written as fast as the socket takes them (the server must see each). */
  async function copyIn(table: string): Promise<Outcome> {
    const c = await RawClient.connect(url);
    const before = Number((await observer.query("SELECT nextval('memory_rows') AS n")).rows[0].n);
    c.send(query(`COPY ${table} (line) FROM STDIN`));
    expect((await c.next()).type).toBe("G");
    // one CopyData per line, as psql sends them, a thousand to a write
    const batch = Buffer.concat(
      Array.from({ length: 1000 }, () => copyData(Buffer.from("x".repeat(LINE) + "\n"))),
    );
    let heldBack = 0;
    for (let sent = 0; sent < ROWS; sent += 1000) if (await c.write(batch)) heldBack++;
    c.send(copyDone());
    const replies = await c.untilReady();
    expect(replies.map((m) => m.type)).toEqual(["C", "Z"]);
    await c.close();
    const after = Number((await observer.query("SELECT nextval('memory_rows') AS n")).rows[0].n);
    expect(after - before - 1).toBe(ROWS);
    return { bytes: ROWS * (6 + LINE), heldBack };
  }

  it(
    "COPY FROM STDIN as fast as the client can",
    () =>
      measured("COPY FROM STDIN, fast client", "writes that waited for the pooler", () =>
        copyIn("memory_fast"),
      ),
    60_000,
  );

  it(
    "COPY FROM STDIN into a server that stalls 20 ms every 2,000 rows",
    () =>
      measured("COPY FROM STDIN, stalling server", "writes that waited for the pooler", () =>
        copyIn("memory_stalling"),
      ),
    60_000,
  );

  /** Whether `p` is still pending after `ms`. */
  async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
    try {
      return await Promise.race([p.then(() => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  it("a client pipelining Close and Parse of a cached statement, never reading the answers", async () => {
    const ATTEMPT = 200 * MiB;
    /** A write that has not drained this long means the pooler stopped reading. */
    const STUCK_MS = 3000;
    const c = await RawClient.connect(url);
    // the server prepares the statement once; from then on the pooler answers both messages itself
    expect((await c.exchange([parse("s", "SELECT 1"), sync()])).map((m) => m.type)).toEqual(["1", "Z"]);
    const pair = Buffer.concat([close("S", "s"), parse("s", "SELECT 1")]);
    expect((await c.exchange([pair, sync()])).map((m) => m.type)).toEqual(["3", "1", "Z"]);
    const sock = c.release();
    sock.pause();
    const pid = pooler.child.pid!;
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => pair));
    const started = Date.now();
    const rss = sampleRss(pid);
    let sent = 0;
    let stuck = false;
    // no Sync: the server owes nothing and never hears of it (the pooler answers within the batch)
    while (!stuck && sent < ATTEMPT && memoryOf(pid).rss - baseline < BOUND) {
      stuck = await pendingAfter(c.write(batch), STUCK_MS);
      sent += batch.length;
    }
    const peak = rss.stop();
    const secs = (Date.now() - started - (stuck ? STUCK_MS : 0)) / 1000;
    console.log(
      `memory, Close+Parse answered by the pooler, client never reads: ${(sent / MiB).toFixed(1)} MiB sent in ` +
        `${secs.toFixed(1)} s before ${stuck ? "the pooler stopped reading" : "giving up"} (of ${ATTEMPT / MiB} MiB tried); ` +
        `pooler RSS baseline ${(baseline / MiB).toFixed(1)} MiB, ${(rss.baseline / MiB).toFixed(1)} MiB before, ` +
        `peak +${((peak - baseline) / MiB).toFixed(1)} MiB ` +
        `(bound +${BOUND / MiB})`,
    );
    expect(stuck).toBe(true);
    expect(peak - baseline).toBeLessThan(BOUND);

    // once the client reads, the pooler reads on: every message answered, nothing lost
    const received = readReplies(sock);
    sock.write(sync());
    const pairs = sent / pair.length;
    expect((await received).bytes).toBe(pairs * 10 + READY_IDLE.length); // CloseComplete + ParseComplete: 5 bytes each
    sock.destroy();
  }, 60_000);

  /**
   * Runs `queries` on a connection of its own through `target` while sampling `pid`'s RSS; asserts
   * and prints the growth. Assembled, each big message would be held whole (and copied) before a
   * byte of it went on.
   */
  async function bigMessages(
    what: string,
    target: string,
    pid: number,
    queries: (c: pg.Client) => Promise<void>,
  ): Promise<void> {
    const c = await connect(target);
    try {
      await c.query("SELECT 1");
      const before = memoryOf(pid).rss;
      const rss = sampleRss(pid);
      await queries(c);
      const peak = rss.stop();
      console.log(
        `memory, ${what}: pooler RSS ${(before / MiB).toFixed(1)} MiB before, ` +
          `peak +${((peak - before) / MiB).toFixed(1)} MiB (bound +${BOUND / MiB})`,
      );
      expect(peak - before).toBeLessThan(BOUND);
    } finally {
      await c.end();
    }
  }

  it(
    "a 200 MiB query and 200 MiB bind parameters stream through in transaction pooling",
    () =>
      bigMessages(
        "a 200 MiB Query and two 200 MiB Binds in transaction pooling",
        url,
        pooler.child.pid!,
        async (c) => {
          const text = "y".repeat(200 * MiB);
          // the Query is classified on the way (a SET after its literal must still be seen), not assembled
          const [n] = (await c.query(
            `SELECT length('${text}') AS n; SET lock_timeout = '5s'`,
          )) as unknown as pg.QueryResult[];
          expect(n!.rows[0].n).toBe(200 * MiB);
          expect((await c.query("SELECT length($1) AS n", [text])).rows[0].n).toBe(200 * MiB);
          // a named statement's Bind is renamed to the pooler's statement on the way
          const named = { name: "big_bind", text: "SELECT length($1) AS n, $2::int AS k", values: [text, 7] };
          expect((await c.query(named)).rows[0]).toEqual({ n: 200 * MiB, k: 7 });
        },
      ),
    60_000,
  );

  it("a 100 MiB Parse that reads like session SQL is classified without holding its tokens", async () => {
    // A Parse is read whole in transaction pooling (its text is kept to prepare it on other
    // servers); only its classification must not cost many times its size.
    const c = await connect(url);
    try {
      const before = memoryOf(pooler.child.pid!).rss;
      const rss = sampleRss(pooler.child.pid!);
      const text = `SELECT length('${"y".repeat(100 * MiB)}') AS n, set_config('app.parsed', 'yes', false) AS s`;
      const r = await c.query({ name: "big_parse", text });
      const peak = rss.stop();
      console.log(
        `memory, a 100 MiB Parse in transaction pooling: pooler RSS ${(before / MiB).toFixed(1)} MiB before, ` +
          `peak +${((peak - before) / MiB).toFixed(1)} MiB (the message itself ${(text.length / MiB).toFixed(0)} MiB)`,
      );
      expect(r.rows[0]).toEqual({ n: 100 * MiB, s: "yes" });
      expect((await c.query("SELECT current_setting('app.parsed') AS v")).rows[0].v).toBe("yes");
      expect(peak - before).toBeLessThan(4 * 100 * MiB);
    } finally {
      await c.end();
    }
  }, 120_000);

  it("a 200 MiB query and a 200 MiB bind parameter stream through in session pooling", async () => {
    const port = await freePort();
    const session = spawnPooler([], {
      DATABASE_URL: server.url("postgres"),
      LISTEN_PORT: String(port),
      POOL_MODE: "session",
      LOG_CONNECTIONS: "0",
      LOG_DISCONNECTIONS: "0",
    });
    try {
      await waitFor(() => session.output().includes('"listening"'), "the pooler to listen", 15_000);
      const target = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;
      await bigMessages(
        "a 200 MiB Query and a 200 MiB Bind in session pooling",
        target,
        session.child.pid!,
        async (c) => {
          const text = "x".repeat(200 * MiB);
          expect((await c.query(`SELECT length('${text}') AS n`)).rows[0].n).toBe(200 * MiB);
          expect((await c.query("SELECT length($1) AS n", [text])).rows[0].n).toBe(200 * MiB);
        },
      );
    } finally {
      session.child.kill("SIGKILL");
    }
  }, 60_000);
});
