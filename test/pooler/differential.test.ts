// The same extended-protocol conversations with PostgreSQL directly and through the pooler in
// transaction mode, compared message by message: statement renaming, synthetic replies, errors in
// the middle of a pipeline and the skip-to-Sync that follows must leave no trace a client can see.
// Through the pooler, another client grabs the server the test client just used before every
// other step, so the conversation keeps moving between servers.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  bind,
  close,
  copyData,
  copyDone,
  describe as describeMsg,
  execute,
  flush,
  parse,
  query,
  sync,
} from "../../pooler/protocol/messages.ts";
import { connect } from "../support/clients.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";
import { RawClient, visibleReply } from "../support/protocol.ts";

/** 1200 columns with 60-character names: about 100 kB of RowDescription. */
const WIDE_SELECT = `SELECT ${Array.from({ length: 1200 }, (_, i) => `${i} AS c${String(i).padStart(59, "x")}`).join(", ")}`;

/** Messages to send, and how many ReadyForQuery (or, for a Flush, plain messages) to wait for. */
type Step = { send: Buffer[]; ready?: number; messages?: number };

const CONVERSATIONS: Record<string, Step[]> = {
  "unnamed statements, parameters, Describe, a portal read in parts": [
    {
      send: [
        parse("", "SELECT $1::int + 1 AS n", [23]),
        bind("", "", ["41"]),
        describeMsg("P", ""),
        execute(),
        sync(),
      ],
    },
    {
      send: [
        parse("", "SELECT g FROM generate_series(1, $1::int) AS g"),
        describeMsg("S", ""),
        bind("", "", ["5"]),
        execute("", 2),
        execute("", 0),
        sync(),
      ],
    },
  ],
  "a named statement used across transactions, closed, then prepared again": [
    { send: [parse("s1", "SELECT $1::text AS t"), sync()] },
    { send: [bind("", "s1", ["a"]), describeMsg("P", ""), execute(), sync()] },
    { send: [describeMsg("S", "s1"), sync()] },
    { send: [bind("", "s1", ["b"]), execute(), sync()] },
    { send: [bind("", "s1", ["x", "y"]), execute(), sync()] },
    { send: [close("S", "s1"), sync()] },
    { send: [bind("", "s1", ["c"]), execute(), sync()] },
    { send: [parse("s1", "SELECT 2 AS x"), bind("", "s1"), execute(), sync()] },
  ],
  "errors in the middle of pipelines": [
    {
      send: [
        parse("bad", "SELEC 1"),
        bind("", "bad"),
        execute(),
        sync(),
        parse("good", "SELECT 1 AS one"),
        bind("", "good"),
        execute(),
        sync(),
      ],
      ready: 2,
    },
    { send: [bind("", "bad"), execute(), sync()] },
    { send: [parse("good", "SELECT 1 AS one"), sync()] },
    { send: [parse("good", "SELECT 3"), bind("", "good"), execute(), parse("late", "SELECT 4"), sync()] },
    { send: [bind("", "late"), sync()] },
    { send: [bind("", "good"), execute(), bind("", "nope"), execute(), close("S", "good"), sync()] },
    { send: [bind("", "good"), execute(), sync()] },
  ],
  "Close and Parse of a name after a failed Execute, skipped together": [
    { send: [parse("ua", "SELECT 'old' AS v"), sync()] },
    {
      send: [
        parse("", "SELECT 1 / 0"),
        bind("", ""),
        execute(),
        close("S", "ua"),
        parse("ua", "SELECT 'new' AS v"),
        sync(),
      ],
    },
    { send: [bind("", "ua"), execute(), sync()] },
  ],
  "a Parse of known SQL inside a failed transaction": [
    { send: [parse("known", "SELECT 1 AS one"), sync()] },
    { send: [query("BEGIN")] },
    { send: [query("SELECT 1 / 0")] },
    { send: [parse("again", "SELECT 1 AS one"), sync()] },
    { send: [query("ROLLBACK")] },
    { send: [bind("", "again"), execute(), sync()] },
  ],
  "a named ROLLBACK prepared inside a failed transaction whose server already has it": [
    { send: [query("BEGIN")] },
    { send: [parse("rb1", "ROLLBACK"), parse("k", "SELECT 1 AS one"), sync()] },
    { send: [query("SELECT 1 / 0")] },
    { send: [parse("rb2", "ROLLBACK"), bind("", "rb2"), execute(), sync()] },
    { send: [query("SELECT 2 AS two")] },
  ],
  "a ROLLBACK and a Parse of known SQL in one write, inside a failed transaction": [
    { send: [query("BEGIN")] },
    { send: [parse("k", "SELECT 1 AS one"), sync()] },
    { send: [query("SELECT 1 / 0")] },
    {
      send: [query("ROLLBACK"), parse("mine", "SELECT 1 AS one"), bind("", "mine"), execute(), sync()],
      ready: 2,
    },
  ],
  "COPY FROM STDIN as libpq's PQexecParams sends it (a Sync behind the Execute), then named statements": [
    {
      send: [
        parse("", "COPY pooler_diff_copy FROM STDIN"),
        bind("", ""),
        describeMsg("P", ""),
        execute(),
        sync(),
      ],
      messages: 4,
    },
    { send: [copyData(Buffer.from("1\n2\n")), copyDone(), sync()] },
    { send: [parse("s1", "SELECT 42 AS n"), bind("", "s1"), execute(), sync()] },
    { send: [parse("s2", "SELECT 42 AS n"), bind("", "s2"), execute(), sync()] },
    { send: [query("SELECT count(*) > 0 AS copied FROM pooler_diff_copy")] },
  ],
  "a transaction that fails half-way": [
    { send: [query("BEGIN")] },
    { send: [parse("div", "SELECT 1 / $1::int AS q"), bind("", "div", ["0"]), execute(), sync()] },
    { send: [bind("", "div", ["1"]), execute(), sync()] },
    { send: [query("ROLLBACK")] },
    { send: [bind("", "div", ["1"]), execute(), sync()] },
  ],
  "Flush without Sync, Close and Describe of what does not exist": [
    { send: [parse("f1", "SELECT 7 AS seven"), flush()], messages: 1 },
    { send: [bind("", "f1"), execute(), sync()] },
    { send: [close("S", "nope"), close("P", "nope"), describeMsg("S", "nope"), sync()] },
    { send: [describeMsg("P", "nope"), sync()] },
  ],
  "DEALLOCATE ALL and DISCARD ALL between uses of a statement": [
    {
      send: [
        parse("d1", "SELECT 1 AS a"),
        sync(),
        query("DEALLOCATE ALL"),
        bind("", "d1"),
        sync(),
        parse("d1", "SELECT 1 AS a"),
        bind("", "d1"),
        execute(),
        sync(),
      ],
      ready: 4,
    },
    {
      send: [query("DISCARD ALL"), parse("d1", "SELECT 1 AS a"), bind("", "d1"), execute(), sync()],
      ready: 2,
    },
    { send: [bind("", "d1"), execute(), sync()] },
  ],
  "a RowDescription wider than the pooler's 64 kB streaming threshold": [
    { send: [parse("wide", WIDE_SELECT), describeMsg("S", "wide"), bind("", "wide"), execute(), sync()] },
    { send: [bind("", "wide"), describeMsg("P", ""), execute(), sync()] },
    // answered by the pooler: comes out in the right place only if no reply was missed above
    { send: [close("S", "wide"), sync()] },
  ],
  "a prepared DEALLOCATE ALL drops the statements when it runs, not when it is prepared or described": [
    { send: [parse("s1", "SELECT 1 AS a"), parse("d", "DEALLOCATE ALL"), describeMsg("S", "d"), sync()] },
    { send: [bind("", "s1"), execute(), sync()] },
    { send: [bind("", "d"), execute(), sync()] },
    { send: [bind("", "s1"), execute(), sync()] },
    { send: [bind("", "d"), execute(), sync()] },
  ],
  "errors about a statement whose name has dollar signs": [
    { send: [parse("a$$b$&c", "SELECT 1 AS one"), sync()] },
    { send: [parse("a$$b$&c", "SELECT 2 AS two"), sync()] },
    { send: [describeMsg("S", "x$'y"), sync()] },
  ],
  "one SQL text with different parameter types, then Describe": [
    { send: [parse("t_int", "SELECT $1 AS v", [23]), parse("t_text", "SELECT $1 AS v", [25]), sync()] },
    { send: [describeMsg("S", "t_int"), describeMsg("S", "t_text"), sync()] },
    { send: [bind("", "t_text", ["abc"]), execute(), bind("", "t_int", ["abc"]), execute(), sync()] },
  ],
  "a Parse of known SQL in the same write as the error that fails its transaction": [
    {
      send: [
        parse("k", "SELECT 1 AS one"),
        sync(),
        query("BEGIN"),
        query("SELECT 1 / 0"),
        parse("mine", "SELECT 1 AS one"),
        bind("", "mine"),
        execute(),
        sync(),
        query("ROLLBACK"),
      ],
      ready: 5,
    },
    { send: [bind("", "mine"), execute(), sync()] },
    {
      send: [
        query("BEGIN"),
        parse("", "SELECT 1 / 0"),
        bind("", ""),
        execute(),
        sync(),
        parse("mine2", "SELECT 1 AS one"),
        sync(),
        query("ROLLBACK"),
      ],
      ready: 4,
    },
    { send: [bind("", "mine2"), execute(), sync()] },
  ],
  "one name closed and prepared again within a pipeline": [
    {
      send: [
        parse("s2", "SELECT 'first' AS v"),
        bind("", "s2"),
        execute(),
        close("S", "s2"),
        parse("s2", "SELECT 'second' AS v"),
        bind("", "s2"),
        execute(),
        sync(),
      ],
    },
    { send: [bind("", "s2"), execute(), sync()] },
  ],
  // (was: the parse check left on a server by a Parse an error skipped still stood for the name when
  // the client came back to that server, after preparing the name again on another, with a reply
  // still owed: the Parse went under the check's name and succeeded; FUZZ_SEED=7 round 276)
  "a Parse of a name on a server where an earlier transaction's Parse of it was skipped, behind a Sync": [
    { send: [sync()] },
    { send: [bind("", "nope"), parse("a", "SELECT 1 / $1::int AS q"), sync()] },
    { send: [parse("a", "SELECT $1::int AS v"), sync()] },
    { send: [sync(), parse("a", "SELECT 1 AS one"), sync()], ready: 2 },
  ],
};

async function converse(
  c: RawClient,
  steps: Step[],
  between: (i: number) => Promise<void>,
): Promise<string[][]> {
  const out: string[][] = [];
  for (const [i, step] of steps.entries()) {
    await between(i);
    c.send(...step.send);
    const replies =
      step.messages !== undefined ? await c.take(step.messages) : await c.untilReady(step.ready ?? 1);
    out.push(replies.map(visibleReply));
  }
  return out;
}

describe("the same conversations directly and through the pooler", () => {
  let p: TestPooler;
  let other: pg.Client;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "2" });
    other = await connect(p.url());
    await other.query("CREATE TABLE IF NOT EXISTS pooler_diff_copy (n int)");
  });
  afterAll(async () => {
    await other.end();
    await p.stop();
  });

  /** Before every other step the other client takes the most recently used server, in a transaction. */
  async function shuffle(i: number): Promise<void> {
    await other.query(i % 2 === 1 ? "BEGIN" : "COMMIT").catch(() => undefined);
    if (i % 2 === 1) await other.query("SELECT 1");
  }

  it.each(Object.keys(CONVERSATIONS))("%s", async (name) => {
    const steps = CONVERSATIONS[name]!;
    const direct = await RawClient.connect(inject("pgAppUrl"));
    const pooled = await RawClient.connect(p.url());
    try {
      const expected = await converse(direct, steps, async () => undefined);
      const got = await converse(pooled, steps, shuffle);
      await other.query("COMMIT").catch(() => undefined);
      expect(got).toEqual(expected);
    } finally {
      await direct.close();
      await pooled.close();
    }
  });
});

/** With room for one statement per server, every other use of a name evicts another: the same conversations. */
const EVICTING: Record<string, Step[]> = {
  "a statement evicted while a portal made from it is still to be read": [
    {
      send: [
        parse("e1", "SELECT g AS a FROM generate_series(1, 3) AS g"),
        bind("p1", "e1"),
        execute("p1", 1),
        parse("e2", "SELECT 'two' AS b"),
        bind("", "e2"),
        execute("p1", 0),
        execute(),
        describeMsg("S", "e1"),
        describeMsg("S", "e2"),
        bind("", "e1"),
        execute(),
        sync(),
      ],
    },
    { send: [describeMsg("S", "e2"), bind("", "e2"), execute(), sync()] },
  ],
  "an error after evictions in one pipeline, then each name again": [
    {
      send: [
        parse("e1", "SELECT 1 AS one"),
        parse("e2", "SELECT 2 AS two"),
        bind("", "e1"),
        execute(),
        parse("e3", "SELEC 3"),
        bind("", "e2"),
        execute(),
        sync(),
      ],
    },
    { send: [bind("", "e2"), execute(), bind("", "e3"), sync()] },
    { send: [bind("", "e1"), execute(), bind("", "e2"), execute(), sync()] },
  ],
  "a large statement": [
    {
      send: [
        parse("big", `SELECT length('${"x".repeat(300_000)}') AS n`),
        parse("small", "SELECT 1 AS one"),
        bind("", "big"),
        execute(),
        sync(),
      ],
    },
    { send: [bind("", "small"), execute(), bind("", "big"), execute(), sync()] },
  ],
  // The pooler's Parse of an evicted statement is skipped behind an error: what comes behind the
  // Sync must not take the statement as prepared (found by the differential fuzzer).
  "a second Parse of a name, behind a Sync after an error that skipped the statement's Parse again, must get 42P05":
    [
      { send: [parse("a", "SELECT 1 AS one"), sync()] },
      { send: [parse("b", "SELECT 2 AS two"), sync()] },
      // (was ParseComplete, and the server's statement for "a" then held SELECT 3)
      {
        send: [parse("x", "SELEC 1"), describeMsg("S", "a"), sync(), parse("a", "SELECT 3 AS three"), sync()],
        ready: 2,
      },
      { send: [bind("", "a"), execute(), sync()] },
    ],
  "a Bind behind a Sync after an error that skipped the statement's Parse again runs it": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    { send: [parse("b", "SELECT 2 AS two"), sync()] },
    // (was 26000)
    {
      send: [parse("x", "SELEC 1"), describeMsg("S", "a"), sync(), bind("", "a"), execute(), sync()],
      ready: 2,
    },
  ],
  // The pooler's eviction Close is skipped behind an error: behind the Sync the server still has the
  // statement (was 42P05 from the pooler's Parse of it, where the client's Bind succeeds).
  "a Bind behind a Sync after an error that skipped the statement's eviction": [
    { send: [parse("a", "BEGIN"), sync()] },
    { send: [parse("b", "SELECT 2 AS two"), sync()] },
    {
      send: [bind("", "a", ["0"]), parse("c", "SELECT 3 AS three"), sync(), bind("", "a"), sync()],
      ready: 2,
    },
  ],
  // The Close, answered later, is skipped with the failed Parse: the name still exists behind the
  // Sync (was ParseComplete and 26000: the Close was taken as done when routed).
  "a Parse of a name behind a Sync after an error that skipped the name's Close gets 42P05": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    {
      send: [bind("", "x"), close("S", "a"), sync(), parse("a", "SELECT 2 AS two"), sync()],
      ready: 2,
    },
    { send: [bind("", "a"), execute(), sync()] },
  ],
  "a Bind behind a Sync after an error that skipped the name's Close runs the statement": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    {
      send: [bind("", "x"), close("S", "a"), sync(), describeMsg("S", "a"), bind("", "a"), execute(), sync()],
      ready: 2,
    },
  ],
  "a Close behind a Sync that was done frees the name for a Parse of other text": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    {
      send: [query("SELECT 9"), close("S", "a"), sync(), parse("a", "SELECT 2 AS two"), sync()],
      ready: 3,
    },
    {
      send: [
        bind("", "a"),
        execute(),
        sync(),
        parse("b", "SELECT 1 AS one"),
        bind("", "b"),
        execute(),
        sync(),
      ],
      ready: 2,
    },
  ],
  "a Bind behind a Sync after the name's Close was done gets 26000": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    {
      send: [query("SELECT 9"), close("S", "a"), sync(), bind("", "a"), execute(), sync()],
      ready: 3,
    },
    { send: [parse("a", "SELECT 1 AS one"), bind("", "a"), execute(), sync()] },
  ],
  // (was: the failing Parse evicts a's statement first, capacity 1: with the eviction done and the
  // Close skipped, a existed directly but nothing on the server stood for it, and the second Parse
  // took the name as free; found by the fuzzer)
  "a Parse of a name behind a Sync after an error that skipped the name's Close, its statement evicted before":
    [
      { send: [parse("a", "SELECT 1 AS one"), sync()] },
      {
        send: [parse("x", "SELEC 1"), close("S", "a"), sync(), parse("a", "SELECT 2 AS two"), sync()],
        ready: 2,
      },
    ],
  "a Bind behind a Sync after an error that skipped the Close of a name whose Parse came just before runs it":
    [
      {
        send: [
          parse("a", "SELECT $1::int AS v"),
          bind("", "nope"),
          close("S", "a"),
          sync(),
          bind("", "a", ["3"]),
          execute(),
          sync(),
        ],
        ready: 2,
      },
    ],
  // (was: the skipped Close gave the name back the statement whose Parse had failed)
  "a Parse behind a Sync after an error that skipped the Close of a name whose Parse failed": [
    {
      send: [
        parse("a", "SELEC 1"),
        sync(),
        bind("", "nope"),
        close("S", "a"),
        sync(),
        parse("a", "SELECT 1 AS one"),
        bind("", "a"),
        execute(),
        sync(),
      ],
      ready: 3,
    },
  ],
  "a Bind behind a Sync after an error that skipped the name's own Parse gets 26000": [
    {
      send: [parse("x", "SELEC 1"), parse("a", "SELECT 5 AS five"), sync(), bind("", "a"), execute(), sync()],
      ready: 2,
    },
  ],
  // (was: its Close and Parse under the statement's name skipped, the Describe found the statement
  // the failed DEALLOCATE ALL had left there; found by the fuzzer)
  "a Describe behind a Sync after an error that skipped the name's Parse of a statement the server may have":
    [
      { send: [parse("a", "SELECT 1 AS one"), sync()] },
      { send: [query("BEGIN"), query("SELECT 1 / 0"), query("DEALLOCATE ALL"), query("ROLLBACK")], ready: 4 },
      {
        send: [bind("", "nope"), parse("b", "SELECT 1 AS one"), sync(), describeMsg("S", "b"), sync()],
        ready: 2,
      },
    ],
  // (was: each eviction Close, dropped at once as PostgreSQL skips it, undid itself and left the
  // server full, evicting again until an array overflowed: the client was refused)
  "a Parse that would evict, sent after a Flush brought an error, is skipped": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    { send: [bind("", "nope"), flush()], messages: 1 },
    { send: [parse("b", "SELECT 2 AS two"), sync()] },
    { send: [bind("", "a"), execute(), bind("", "b"), sync()] },
  ],
  // (was, FUZZ_SEED=1 round 285, only partly reduced: a stays "SELECT 2 AS two" directly, its
  // Describe failing for the transaction (25P02); through the pooler a was gone (26000))
  "a Describe in a failed transaction of a name whose Close an error skipped, after a skipped second Parse of it":
    [
      {
        send: [
          query("EXECUTE sq"),
          query("BEGIN"),
          close("S", "b"),
          parse("a", "SELECT 2 AS two"),
          bind("p1", "b"),
          describeMsg("S", "a"),
          parse("a", "COMMIT"),
          sync(),
        ],
        ready: 3,
      },
      {
        send: [
          sync(),
          bind("", "c", ["1"]),
          close("S", "a"),
          bind("p1", "a", ["1", "2"]),
          parse("a", "SELECT g FROM generate_series(1, 3) AS g"),
          parse("", "SELECT 1 / 0 AS z"),
          sync(),
        ],
        ready: 2,
      },
      { send: [sync(), describeMsg("S", "a"), sync()], ready: 2 },
    ],
  // (was: the skipped Parse behind the skipped Close dropped the name's earlier unanswered chain,
  // so the Close's undo gave the name the second Parse's statement; FUZZ_SEED=99 round 71)
  "a Describe behind a Sync after an error that skipped two Parses of a name, its Close and a third Parse": [
    {
      send: [
        bind("", "nope"),
        parse("a", "SELECT 1 AS one"),
        parse("a", "SELECT 2 AS two"),
        close("S", "a"),
        parse("a", "SELECT 3 AS three"),
        sync(),
      ],
    },
    { send: [describeMsg("S", "a"), sync()] },
  ],
  // (was: the skipped Parse's check still stood for the name, which the Close's undo gave back its
  // statement: the next Parse went under the check's name and succeeded; FUZZ_SEED=20260611 round 434)
  "a Parse behind a Sync after an error that skipped the name's Close and a Parse of it": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    { send: [execute("p1"), close("S", "a"), parse("a", "SELECT $1::int AS v"), sync()] },
    { send: [sync(), parse("a", "SELECT 2 AS two"), sync()], ready: 2 },
  ],
  // (was: the skipped second Close reopened the name the first had closed, for its Parse's
  // statement: a Parse of the name got 42P05; FUZZ_SEED=42 round 368)
  "a Parse after an error that skipped a second Close of a name whose first Close was done": [
    {
      send: [
        parse("a", "SELECT 1 AS one"),
        sync(),
        close("S", "a"),
        bind("", "nope"),
        close("S", "a"),
        sync(),
      ],
      ready: 2,
    },
    { send: [parse("a", "SELECT 2 AS two"), sync()] },
  ],
  // (was: the Close's undo gave the name back after the DISCARD ALL had dropped it; FUZZ_SEED=99 round 173)
  "a Parse after a DISCARD ALL sent behind an error that skipped the Close of a name": [
    {
      send: [parse("a", "SELECT 1 AS one"), bind("", "nope"), close("S", "a"), sync(), query("DISCARD ALL")],
      ready: 2,
    },
    { send: [parse("a", "SELECT 2 AS two"), sync()] },
  ],
  // (was: the second Parse of a, its first skipped, took the statement's own name and was to be
  // closed at settling; b's Bind, behind it, prepared the statement there again, which the settling
  // then closed: the server's list said it had it, and every later Bind of it got 26000;
  // FUZZ_SEED=99 round 115 in full concurrent runs)
  "a Bind of a name whose statement is prepared again under the name a skipped Parse's second Parse took": [
    { send: [parse("b", "SELECT 1 AS one"), sync()] },
    { send: [parse("c", "SELECT 3 AS three"), sync()] },
    {
      send: [
        bind("", "nope"),
        parse("a", "SELECT 1 AS one"),
        sync(),
        parse("a", "SELECT 2 AS two"),
        bind("", "b"),
        execute(),
        sync(),
      ],
      ready: 2,
    },
    { send: [bind("", "b"), execute(), sync()] },
    { send: [bind("", "a"), execute(), sync()] },
  ],
  // (was: the skipped Parse's unanswered chain still stood for the name once the Close's undo had
  // given it back its statement, until the Sync was answered: the Bind went to the Parse's statement,
  // never prepared; FUZZ_SEED=20260611 round 238, through the failed transaction's Parse)
  "a Bind behind a Sync after an error that skipped the Close of an evicted name and a Parse of it": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    { send: [parse("b", "SELECT 2 AS two"), sync()] },
    {
      send: [
        bind("", "nope"),
        close("S", "a"),
        parse("a", "SELECT 3 AS three"),
        sync(),
        bind("", "a"),
        execute(),
        sync(),
      ],
      ready: 2,
    },
  ],
};

/** Messages behind a request that may start a COPY FROM STDIN, in the same write: PostgreSQL fails the COPY on the client's. */
const BEHIND_COPY: Record<string, Step[]> = {
  // (was: the pooler's eviction Close broke the COPY, 0x43, and the Parse was then done)
  "a Parse that evicts, in the same write as a Query starting a COPY, breaks the COPY and is not done": [
    { send: [parse("a", "SELECT 1 AS one"), sync()] },
    { send: [query("COPY pooler_diff_copy FROM STDIN"), parse("b", "SELECT 2 AS two"), sync()], ready: 2 },
    { send: [bind("", "b"), execute(), sync()] },
  ],
  "a Parse of a statement the server may have (after DEALLOCATE ALL), in the same write as a Query starting a COPY":
    [
      { send: [parse("a", "SELECT 1 AS one"), sync(), query("DEALLOCATE ALL")], ready: 2 },
      { send: [query("COPY pooler_diff_copy FROM STDIN"), parse("b", "SELECT 1 AS one"), sync()], ready: 2 },
      { send: [bind("", "b"), execute(), sync()] },
    ],
};

/** Two names parsed as the same text, one closed behind the settling of a parse check (closeBehind). */
const CLOSED_TWIN_SETUP: Step = {
  send: [
    parse("s2", "SELECT 1 AS one"),
    parse("s1", "SELECT 1 AS one"),
    bind("p1", "s2"),
    sync(),
    execute(""),
    sync(),
  ],
  ready: 2,
};

/**
 * s2 parsed, then its statement evicted by another (MAX_PREPARED_STATEMENTS=1), so that a Parse of
 * s1 as the same text prepares it, but an error skips that; `between` behind the Sync, then a Bind of
 * s2 (which prepares the statement again), `behind`, and a Bind of s1.
 */
function skippedTwinParse(between: Buffer[] = [], behind: Buffer[] = []): Step[] {
  return [
    { send: [parse("s2", "SELECT 1 AS one"), sync()] },
    { send: [parse("x", "SELECT 3 AS three"), sync()] },
    {
      send: [
        bind("", "nope"),
        parse("s1", "SELECT 1 AS one"),
        sync(),
        ...between,
        bind("", "s2"),
        execute(""),
        ...behind,
        bind("", "s1"),
        execute(""),
        sync(),
      ],
      ready: 2,
    },
  ];
}

/**
 * Conversations that need the servers as a new pooler has them (what earlier rows leave decides
 * whether they reach the case): each runs on a pooler of its own.
 */
const FRESH: Record<string, Step[]> = {
  // (was: the Describe prepared the statement again under the name standing for s2 until its Close
  // was answered, and the Bind ran it; fuzz:prepared seed 1561303172 round 590)
  "two names parsed as the same text, one closed: a Bind of the closed name behind a Describe of the other gets 26000":
    [
      CLOSED_TWIN_SETUP,
      {
        send: [close("S", "s2"), sync(), describeMsg("S", "s1"), bind("", "s2"), execute(""), sync()],
        ready: 2,
      },
    ],
  "the same, with the Close, the Describe and the Bind in one batch": [
    CLOSED_TWIN_SETUP,
    { send: [close("S", "s2"), describeMsg("S", "s1"), bind("", "s2"), execute(""), sync()] },
  ],
  "the same, the closed name parsed as another text before the Describe: its Bind runs that text": [
    CLOSED_TWIN_SETUP,
    {
      send: [
        close("S", "s2"),
        sync(),
        parse("s2", "SELECT 2 AS two"),
        describeMsg("S", "s1"),
        sync(),
        bind("", "s2"),
        execute(""),
        sync(),
      ],
      ready: 3,
    },
  ],
  "the same behind an error that skips the Close: the Parse gets 42P05, the Bind runs the first text": [
    CLOSED_TWIN_SETUP,
    {
      send: [
        bind("", "nope"),
        close("S", "s2"),
        sync(),
        parse("s2", "SELECT 2 AS two"),
        describeMsg("S", "s1"),
        sync(),
        bind("", "s2"),
        execute(""),
        sync(),
      ],
      ready: 3,
    },
  ],
  "the same, a second Close of the closed name behind the Describe: the Bind gets 26000": [
    CLOSED_TWIN_SETUP,
    {
      send: [
        close("S", "s2"),
        sync(),
        describeMsg("S", "s1"),
        close("S", "s2"),
        bind("", "s2"),
        execute(""),
        sync(),
      ],
      ready: 2,
    },
  ],
  "the same, an error skipping both Closes: the Bind behind them runs the first text": [
    CLOSED_TWIN_SETUP,
    {
      send: [
        bind("", "nope"),
        close("S", "s2"),
        sync(),
        describeMsg("S", "s1"),
        bind("", "nope"),
        close("S", "s2"),
        sync(),
        bind("", "s2"),
        execute(""),
        sync(),
      ],
      ready: 3,
    },
  ],
  // (was: s1's Parse went under the statement's own name, which s2's Bind prepared again: s1's Bind ran it)
  "a name's Parse skipped, another name of its text prepares it again behind a Sync: the name's Bind gets 26000":
    skippedTwinParse(),
  "the same, the name parsed as another text behind the Sync: its Bind runs that text": skippedTwinParse([
    parse("s1", "SELECT 2 AS two"),
  ]),
  "the same, the name parsed a third time behind the other name's Bind: 42P05": skippedTwinParse(
    [parse("s1", "SELECT 2 AS two")],
    [parse("s1", "SELECT 4 AS four")],
  ),
  // (was: b's Parse went under the statement's own name, which the skipped eviction left on the
  // server: the Bind behind the Sync ran it; fuzz:prepared seed 2464553564 round 917)
  "a name's Parse of a statement evicted earlier in its batch, both skipped by an error: a Bind behind the Sync gets 26000":
    [
      { send: [parse("a", "SELECT 1 AS one"), sync()] },
      { send: [parse("b", "SELECT 2 AS two"), sync()] },
      {
        send: [
          bind("", "nope"),
          parse("a2", "SELECT 1 AS one"),
          parse("b2", "SELECT 2 AS two"),
          sync(),
          bind("", "b2"),
          execute(""),
          sync(),
        ],
        ready: 2,
      },
    ],
};

describe("the same conversations directly and through a pooler with MAX_PREPARED_STATEMENTS=1", () => {
  let p: TestPooler;
  beforeAll(async () => {
    p = await startTestPooler({ DEFAULT_POOL_SIZE: "2", MAX_PREPARED_STATEMENTS: "1" });
    const setup = await connect(p.url());
    await setup.query("CREATE TABLE IF NOT EXISTS pooler_diff_copy (n int)");
    await setup.end();
  });
  afterAll(() => p.stop());

  const conversations = { ...EVICTING, ...BEHIND_COPY, ...FRESH };
  const compare = async (name: string, through = p): Promise<void> => {
    const steps = conversations[name]!;
    const direct = await RawClient.connect(inject("pgAppUrl"));
    const pooled = await RawClient.connect(through.url());
    try {
      expect(await converse(pooled, steps, async () => undefined)).toEqual(
        await converse(direct, steps, async () => undefined),
      );
    } finally {
      await direct.close();
      await pooled.close();
    }
  };
  it.each(Object.keys(EVICTING))("%s", (name) => compare(name));
  it.each(Object.keys(BEHIND_COPY))("%s", (name) => compare(name));
  it.each(Object.keys(FRESH))("%s", (name) =>
    withTestPooler({ DEFAULT_POOL_SIZE: "2", MAX_PREPARED_STATEMENTS: "1" }, (own) => compare(name, own)),
  );
});

/** A step of one of two clients, which share the pooler's one server (their names do not). */
type SharedStep = Step & { client: 0 | 1 };

/**
 * The first client's s2, its statement evicted; the second client's Parse of that text skipped by an
 * error, and its Parse of the name behind the Sync, sent under the statement's name, succeeds and
 * holds that name for a Close at settling; the first client's failing Execute, the settling Close
 * behind it (in front of a Describe), a Sync, `behind`; then `after`.
 */
function skippedSettlingClose(behind: Buffer[], after: SharedStep[]): SharedStep[] {
  return [
    { client: 0, send: [parse("s2", "SELECT 1 AS one"), sync()] },
    { client: 0, send: [parse("x", "SELECT 3 AS three"), sync()] },
    {
      client: 1,
      send: [
        bind("", "nope"),
        parse("s1", "SELECT 1 AS one"),
        sync(),
        parse("s1", "SELECT 2 AS two"),
        sync(),
      ],
      ready: 2,
    },
    { client: 0, send: [execute("p1"), describeMsg("S", "nope"), sync(), ...behind, sync()], ready: 2 },
    ...after,
  ];
}

/**
 * Conversations of two clients taking turns on a pooler of their own with one server and room for
 * one statement, each compared with what PostgreSQL answers it on a connection of its own.
 */
const SHARED: Record<string, SharedStep[]> = {
  // (was: the Bind's statement was prepared again under the name the skipped Close left taken:
  // 42P05, where the Bind runs; fuzz:prepared seed 2464553564 round 591)
  "a Close settling another client's Parse skipped by an error: a Bind behind the Sync still runs":
    skippedSettlingClose(
      [bind("", "s2"), execute("")],
      [{ client: 1, send: [bind("", "s1"), execute(""), sync()] }],
    ),
  // (was: the skipped Close was tried again once the other client settled, closing the statement
  // prepared again since: 26000 for the Bind)
  "the same, the Close not tried again after the statement was prepared behind it: a later Bind runs":
    skippedSettlingClose(
      [bind("", "s2"), execute("")],
      [
        { client: 1, send: [describeMsg("S", "nope"), sync()] },
        { client: 0, send: [bind("", "s2"), execute(""), sync()] },
      ],
    ),
};

describe("two clients on one server, each compared with PostgreSQL directly", () => {
  async function talk(url: string, steps: SharedStep[]): Promise<string[][][]> {
    const clients = await Promise.all([RawClient.connect(url), RawClient.connect(url)]);
    const out: string[][][] = [[], []];
    try {
      for (const step of steps)
        out[step.client]!.push(...(await converse(clients[step.client]!, [step], async () => undefined)));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    return out;
  }
  it.each(Object.keys(SHARED))("%s", (name) =>
    withTestPooler({ DEFAULT_POOL_SIZE: "1", MAX_PREPARED_STATEMENTS: "1" }, async (p) => {
      const steps = SHARED[name]!;
      expect(await talk(p.url(), steps)).toEqual(await talk(inject("pgAppUrl"), steps));
    }),
  );
});
