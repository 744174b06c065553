// Random but well-formed extended-protocol conversations about named prepared statements, for the
// differential fuzzer (prepared.fuzz.test.ts): a handful of names and texts (some failing at Parse,
// Bind or Execute, some transaction control, a COPY FROM STDIN), Bind/Describe/Execute/Close of
// known and unknown names, Syncs or none between them, simple Queries at the boundaries.
//
// Well-formed means the number of ReadyForQuery a step gets is its Syncs plus its Queries, whatever
// fails: a Query comes only where PostgreSQL reads it (after a Sync or a Query, never while it
// skips to a Sync), and every Execute or Query that may start a COPY FROM STDIN is followed by its
// end (CopyData and CopyDone or CopyFail, which PostgreSQL ignores when no COPY started) or by a
// message that breaks it off, never by a Sync or a Query, which PostgreSQL would take for COPY's.
import {
  bind,
  close,
  copyData,
  copyDone,
  copyFail,
  describe,
  execute,
  parse,
  query,
  sync,
} from "../../pooler/protocol/messages.ts";
import type { Rng } from "./rng.ts";

export const COPY_TABLE = "pooler_fuzz_copy";
const COPY_SQL = `COPY ${COPY_TABLE} FROM STDIN`;

/** A message, as the code that builds it (for a scenario table) and its bytes. */
export interface FuzzMessage {
  code: string;
  bytes: Buffer;
}

/** Messages sent in one write, and the ReadyForQuery count that answers them all. */
export interface FuzzStep {
  send: FuzzMessage[];
  ready: number;
}

const NAMES = ["s1", "s1", "s2", "s2", "s3"];
const PORTALS = ["", "", "p1"];
const NAMED_PORTALS = PORTALS.filter((p) => p !== "");
const TEXTS = [
  "SELECT 1 AS one",
  "SELECT 1 AS one",
  "SELECT 2 AS two",
  "SELECT $1::int AS v",
  "SELECT 1 / $1::int AS q",
  "SELECT g FROM generate_series(1, 3) AS g",
  "SELECT 1 / 0 AS z",
  "SELEC 1",
  "BEGIN",
  "ROLLBACK",
  "COMMIT",
  COPY_SQL,
];
const QUERIES = [
  "BEGIN",
  "BEGIN",
  "COMMIT",
  "ROLLBACK",
  "SELECT 3 AS three",
  "SELECT 1 / 0",
  "DEALLOCATE sq",
  "EXECUTE sq",
  COPY_SQL,
];
const PARAMS: string[][] = [[], [], ["1"], ["0"], ["1", "2"]];

const str = JSON.stringify;

const m = {
  parse: (name: string, sql: string): FuzzMessage => ({
    code: `parse(${str(name)}, ${str(sql)})`,
    bytes: parse(name, sql),
  }),
  bind: (portal: string, name: string, params: string[]): FuzzMessage => ({
    code: `bind(${str(portal)}, ${str(name)}${params.length > 0 ? `, ${str(params)}` : ""})`,
    bytes: bind(portal, name, params),
  }),
  describe: (target: "S" | "P", name: string): FuzzMessage => ({
    code: `describe("${target}", ${str(name)})`,
    bytes: describe(target, name),
  }),
  close: (target: "S" | "P", name: string): FuzzMessage => ({
    code: `close("${target}", ${str(name)})`,
    bytes: close(target, name),
  }),
  execute: (portal: string, maxRows: number): FuzzMessage => ({
    code: `execute(${str(portal)}${maxRows > 0 ? `, ${maxRows}` : ""})`,
    bytes: execute(portal, maxRows),
  }),
  sync: (): FuzzMessage => ({ code: "sync()", bytes: sync() }),
  query: (sql: string): FuzzMessage => ({ code: `query(${str(sql)})`, bytes: query(sql) }),
  copyData: (): FuzzMessage => ({
    code: `copyData(Buffer.from("7\\n"))`,
    bytes: copyData(Buffer.from("7\n")),
  }),
  copyDone: (): FuzzMessage => ({ code: "copyDone()", bytes: copyDone() }),
  copyFail: (): FuzzMessage => ({ code: `copyFail("no")`, bytes: copyFail("no") }),
};

/** One client's conversation; the names and portals that may stand for a COPY are remembered throughout. */
class Conversation {
  private readonly copyNames = new Set<string>();
  private readonly copyPortals = new Set<string>();

  constructor(private readonly rng: Rng) {}

  step(): FuzzStep {
    const { rng } = this;
    const send: FuzzMessage[] = [];
    // PostgreSQL reads a Query here: nothing unsynced before it
    let boundary = true;
    // The unnamed statement is used only in the write that parsed it, before the next Sync (behind
    // it, an error may have skipped the Parse: the name means an older one): it outlives the
    // transaction, and so the link to a server, directly only (as with PgBouncer).
    const names = [...NAMES];
    // The unnamed portal is executed only in the write that bound it, after its Bind (behind a
    // failed Bind the rest up to the Sync is skipped). Elsewhere it may be the portal of a simple
    // Query that failed while running in a transaction block, which PostgreSQL 13.23 keeps, its
    // statements in freed memory, until the transaction ends: Query BEGIN, Query EXECUTE sq (no
    // such statement), Query SELECT 1 AS one (refused), Execute of the unnamed portal is a SIGSEGV
    // of the backend, sent directly as well (README).
    let executable = NAMED_PORTALS;
    const items = rng.range(1, 8);
    for (let i = 0; i < items; i++) {
      if (boundary && rng.chance(0.3)) {
        const sql = rng.chance(0.03) ? "PREPARE sq AS SELECT 10 AS ten" : rng.pick(QUERIES);
        send.push(m.query(sql));
        if ((sql === "ROLLBACK" || sql === "COMMIT") && rng.chance(0.3))
          send.push(m.query(rng.pick(["DEALLOCATE ALL", "DISCARD ALL"])));
        // in a failed transaction it fails, and the names stay (no draw: the fixed seed's
        // conversations are otherwise those checked clean)
        else if (sql === "SELECT 1 / 0") send.push(m.query("DEALLOCATE ALL"));
        if (sql === COPY_SQL) this.endCopy(send);
        continue;
      }
      const roll = rng.int(100);
      if (roll < 30) {
        const name = rng.chance(0.15) ? "" : rng.pick(NAMES);
        if (name === "" && names.length === NAMES.length) names.push("");
        const sql = rng.pick(TEXTS);
        if (sql === COPY_SQL) this.copyNames.add(name);
        send.push(m.parse(name, sql));
      } else if (roll < 50) {
        const portal = rng.pick(PORTALS);
        const name = rng.pick(names);
        if (this.copyNames.has(name)) this.copyPortals.add(portal);
        if (portal === "") executable = PORTALS;
        send.push(m.bind(portal, name, rng.pick(PARAMS)));
      } else if (roll < 63) {
        const portal = rng.pick(executable);
        send.push(m.execute(portal, rng.chance(0.2) ? 1 : 0));
        if (this.copyPortals.has(portal)) this.endCopy(send);
      } else if (roll < 73) {
        send.push(rng.chance(0.7) ? m.describe("S", rng.pick(names)) : m.describe("P", rng.pick(PORTALS)));
      } else if (roll < 83) {
        send.push(rng.chance(0.8) ? m.close("S", rng.pick(names)) : m.close("P", rng.pick(PORTALS)));
      } else {
        send.push(m.sync());
        names.length = NAMES.length;
        executable = NAMED_PORTALS;
        boundary = true;
        continue;
      }
      boundary = false;
    }
    if (!boundary) send.push(m.sync());
    return {
      send,
      ready: send.filter((msg) => msg.code === "sync()" || msg.code.startsWith("query(")).length,
    };
  }

  /**
   * Ends a COPY that may have started: its data, and its end or failure. (Not a message that breaks
   * it off in the same write: the pooler's own messages in front of it would, README.)
   */
  private endCopy(send: FuzzMessage[]): void {
    send.push(m.copyData(), this.rng.chance(0.75) ? m.copyDone() : m.copyFail());
  }
}

export function conversation(rng: Rng, steps: number): FuzzStep[] {
  const c = new Conversation(rng);
  return Array.from({ length: steps }, () => c.step());
}

/** The conversation as code for a scenario table. */
export function conversationCode(steps: FuzzStep[]): string {
  return steps
    .map(
      (s) =>
        `{ send: [${s.send.map((msg) => msg.code).join(", ")}]${s.ready === 1 ? "" : `, ready: ${s.ready}`} },`,
    )
    .join("\n");
}
