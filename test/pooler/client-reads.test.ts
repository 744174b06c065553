// Plain clients all read into one buffer (client-reads.ts). A slice of it forwarded to a server that
// is not reading (its write queued) must reach PostgreSQL as the client sent it while other clients'
// reads land in that buffer: several clients stream distinct bytes at once through servers held
// back by PostgreSQL (a COPY whose trigger sleeps, big Binds behind a pg_sleep), and what PostgreSQL
// received is checked byte for byte.
import crypto from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readsCopied } from "../../pooler/client-reads.ts";
import { bind, copyData, copyDone, execute, parse, query, sync } from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { ownDatabase } from "../support/own-database.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient } from "../support/protocol.ts";
import { waitFor } from "../support/wait.ts";

const CLIENTS = 6;
const ROWS = 8000;
/** Rows a write: many writes, each a read or more at the pooler. */
const BATCH = 200;

const md5 = (s: string | Buffer): string => crypto.createHash("md5").update(s).digest("hex");

describe("one read buffer for all clients", () => {
  const db = ownDatabase("client_reads");
  let pooler: TestPooler;
  let observer: pg.Client;

  beforeAll(async () => {
    observer = await connect(db.url());
    // PostgreSQL stops reading for 20 ms every 200 rows: the pooler's writes to it queue up
    await observer.query(`
      CREATE SEQUENCE rows_in;
      CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('rows_in') % 200 = 0 THEN PERFORM pg_sleep(0.02); END IF;
        RETURN NEW;
      END $$;
      CREATE TABLE copied (client int, n int, line text);
      CREATE TRIGGER stall BEFORE INSERT ON copied FOR EACH ROW EXECUTE FUNCTION stall();
    `);
    pooler = await startTestPooler({ DATABASE_URL: db.url(), DEFAULT_POOL_SIZE: String(CLIENTS) });
  });
  afterAll(async () => {
    await pooler?.stop();
    await observer?.end();
  });

  /** COPY FROM STDIN of ROWS rows of its own, as fast as the pooler takes them; the rows' digest. */
  async function copyIn(client: number): Promise<{ sent: string; heldBack: number }> {
    const c = await RawClient.connect(pooler.url(db.name));
    c.send(query("COPY copied (client, n, line) FROM STDIN"));
    expect((await c.next()).type).toBe("G");
    const lines: string[] = [];
    let heldBack = 0;
    for (let n = 0; n < ROWS; n += BATCH) {
      const batch: Buffer[] = [];
      for (let i = n; i < n + BATCH; i++) {
        const line = crypto.randomBytes(500).toString("hex");
        lines.push(line);
        batch.push(copyData(Buffer.from(`${client}\t${i}\t${line}\n`)));
      }
      if (await c.write(...batch)) heldBack++;
    }
    c.send(copyDone());
    expect((await c.untilReady()).map((m) => m.type)).toEqual(["C", "Z"]);
    await c.close();
    return { sent: md5(lines.join("\n")), heldBack };
  }

  it("COPY FROM STDIN from several clients into servers that stall", async () => {
    const sent = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => copyIn(i)));
    const { rows } = await observer.query<{ client: number; rows: number; digest: string }>(
      "SELECT client, count(*)::int AS rows, md5(string_agg(line, E'\\n' ORDER BY n)) AS digest FROM copied GROUP BY client ORDER BY client",
    );
    expect(rows).toEqual(sent.map((s, client) => ({ client, rows: ROWS, digest: s.sent })));
    // the servers held the clients back: the pooler had writes queued
    expect(sent.reduce((n, s) => n + s.heldBack, 0)).toBeGreaterThan(0);
  }, 60_000);

  it("big Binds from several clients, each sent while its server sleeps", async () => {
    const PARAM = 4 << 20;
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const c = await RawClient.connect(pooler.url(db.name));
        const text = crypto.randomBytes(PARAM / 2).toString("hex");
        // in one transaction: the Bind follows the sleep on the same server, which reads it afterwards
        c.send(query("BEGIN; SELECT pg_sleep(0.3)"));
        await c.write(parse("", "SELECT md5($1) AS d"), bind("", "", [text]), execute(), sync());
        const replies = await c.untilReady(2);
        c.send(query("COMMIT"));
        await c.untilReady();
        await c.close();
        const row = replies.filter((m) => m.type === "D").at(-1)!;
        // the md5 DataRow (after pg_sleep's): column count (2), length (4), the text
        return { got: row.body.toString("utf8", 6), want: md5(text) };
      }),
    );
    for (const r of results) expect(r.got).toBe(r.want);
  }, 60_000);

  // A backend waiting on a lock reads nothing: the pooler's write of the Query pipelined behind it
  // stays queued for as long as the lock is held (a client idle in its transaction: for ever).
  it("a write stuck behind a lock: other clients' reads are copied only until the buffer is retired", async () => {
    const holder = await connect(db.url());
    const stuck = await RawClient.connect(pooler.url(db.name));
    const other = await RawClient.connect(pooler.url(db.name));
    try {
      await holder.query("CREATE TABLE locked (x int)");
      await holder.query("BEGIN; LOCK TABLE locked");
      // more than the kernel's socket buffers on both sides of the pooler take
      const text = crypto.randomBytes(16 << 20).toString("hex");
      stuck.send(query("SELECT count(*) FROM locked"), query(`SELECT md5('${text}')`));
      await waitFor(() => readsCopied(), "a write to the locked server to stay queued", 20_000);
      for (let i = 0; i < 600; i++) {
        const sent = crypto.randomBytes(100).toString("hex");
        const row = (await other.exchange([query(`SELECT md5('${sent}')`)])).find((m) => m.type === "D")!;
        expect(row.body.toString("utf8", 6)).toBe(md5(sent));
      }
      // still stuck, and the reads no longer pay for it
      expect(
        (await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")).rows[0].n,
      ).toBe(1);
      expect(readsCopied()).toBe(false);
      await holder.query("COMMIT");
      const rows = (await stuck.untilReady(2)).filter((m) => m.type === "D");
      expect(rows.at(-1)!.body.toString("utf8", 6)).toBe(md5(text));
    } finally {
      await Promise.all([stuck.close(), other.close(), holder.end()]);
    }
  }, 60_000);

  it("queries that wait for a server, each kept while other clients read", async () => {
    const waiting = await startTestPooler({ DATABASE_URL: db.url(), DEFAULT_POOL_SIZE: "1" });
    try {
      const holder = await RawClient.connect(waiting.url(db.name));
      await holder.exchange([query("BEGIN")]);
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, () => RawClient.connect(waiting.url(db.name))),
      );
      const texts = clients.map(() => crypto.randomBytes(10_000).toString("hex"));
      clients.forEach((c, i) => c.send(query(`SELECT md5('${texts[i]}')`)));
      // all of them are in before the server comes free
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.exchange([query("COMMIT")]);
      for (const [i, c] of clients.entries()) {
        const row = (await c.untilReady()).find((m) => m.type === "D")!;
        expect(row.body.toString("utf8", 6)).toBe(md5(texts[i]!));
        await c.close();
      }
      await holder.close();
    } finally {
      await waiting.stop();
    }
  });
});
