import { describe, expect, it } from "vitest";
import { NO_EFFECT, classify, type SessionEffect } from "./session-state.ts";
import { STATEMENT_HEAD, StreamedQuery } from "./streamed-query.ts";

/**
 * Feeds `sql` in pieces of `size` bytes (after a prefix of junk the classifier must skip) and
 * classifies it, reading `head` bytes of each statement.
 */
function streamed(sql: string, size: number, head?: number): SessionEffect {
  const bytes = Buffer.from(sql);
  const q = new StreamedQuery(head);
  const junk = Buffer.from("Q\0\0\0\0");
  const first = Math.min(size, bytes.length);
  q.feed(Buffer.concat([junk, bytes.subarray(0, first)]), junk.length);
  for (let i = first; i < bytes.length; i += size) q.feed(bytes.subarray(i, i + size));
  return q.result();
}

const SPLITS = [1, 2, 3, 7, 64, 1 << 20];

/** SQL where quoting, comments and statement ends matter: streamed, each must classify as whole. */
const CORPUS = [
  "SELECT 1",
  "SET statement_timeout = '1234ms'",
  "SELECT 1; SET app.tenant = 'acme'; RESET work_mem",
  "SELECT 'a;b'';SET x.y = 1'; LISTEN ch",
  "SELECT E'it\\'s; SET a.b = 1', 'c\\'; SET c.d = 2; --'",
  "select $tag$ ; SET a.b = 1 $ta $tag$, $$;$$; SET search_path = x",
  "SELECT $1, a$b$c; SET e.f TO 3",
  'SELECT "weird;""name"; DECLARE c CURSOR WITH HOLD FOR SELECT 1',
  "/* a /* nested; */ SET x.y = 1 */ SELECT 2; -- SET z.z = 1\nSELECT pg_advisory_lock(1)",
  "SELECT 1 - -2 / 3; select SET_CONFIG('App.Tenant', 'x', false)",
  "SELECT 'x\\''; SET lock_timeout = '4444'; -- '",
  "DISCARD ALL; DEALLOCATE ALL; RESET ALL",
  "SELECT 'é;ü' AS \"ñ;\"; SET ñ.ü = 'ß'",
  "CREATE TEMP TABLE t (x int) ON COMMIT DROP; SELECT 1 INTO TEMP u",
  "SELECT '",
  "SELECT /* unterminated ; SET a.b = 1",
];

/**
 * Statement ends only the lexer finds: read 12 bytes of each statement, only a short `SET a.b=1`
 * right after a real `;` is seen; a decoy `;SET x.y=1` inside a literal, identifier, comment or
 * dollar quote must not be. [sql, the placeholders really set by either reading of '…']
 */
const DECOYS: [string, string[]][] = [
  ["SELECT 'a;SET x.y=1'' ;SET x.z=1';SET a.b=1", ["a.b"]],
  ["SELECT E'\\';SET x.y=1';SET a.b=1", ["a.b"]],
  ["SELECT e'\\\\';SET a.b=1", ["a.b"]],
  ["SELECT E'a''\\';SET x.y=1';SET a.b=1", ["a.b"]],
  ["SELECT ex'\\';SET a.b=1", ["a.b"]],
  // standard_conforming_strings off ends the literal after x.y=1, on ends it at \'
  ["SELECT 'x\\';SET x.y=1';SET a.b=1", ["a.b", "x.y"]],
  ['SELECT "a"";SET x.y=1";SET a.b=1', ["a.b"]],
  ["SELECT /* /* */;SET x.y=1 */ 1;SET a.b=1", ["a.b"]],
  ["SELECT /**/;SET a.b=1", ["a.b"]],
  ["SELECT 1 -- x;SET x.y=1\n;SET a.b=1", ["a.b"]],
  ["SELECT 1 -- x\r;SET a.b=1", ["a.b"]],
  ["SELECT 1-1/2;SET a.b=1", ["a.b"]],
  ["SELECT $t$ $t ;SET x.y=1 $t$;SET a.b=1", ["a.b"]],
  ["SELECT $ab$$$ab$;SET a.b=1", ["a.b"]],
  ["SELECT $$';SET x.y=1$$;SET a.b=1", ["a.b"]],
  ["SELECT $1;SET a.b=1", ["a.b"]],
  ["SELECT $1$;SET a.b=1", ["a.b"]],
  ["SELECT a$b$;SET a.b=1", ["a.b"]],
  ["SELECT $_1$;SET x.y=1$_1$;SET a.b=1", ["a.b"]],
  ["SELECT \u00a0E'\\';SET a.b=1", ["a.b"]],
];

describe("StreamedQuery", () => {
  it.each(CORPUS)("classifies corpus case %# as classify does, in pieces of every size", (sql) => {
    const whole = classify(sql);
    const sorted = (e: SessionEffect) => ({
      ...e,
      hidden: [...e.hidden].sort(),
      resets: [...e.resets].sort(),
    });
    for (const size of SPLITS) expect(sorted(streamed(sql, size))).toEqual(sorted(whole));
  });

  it.each(DECOYS)("finds the statements of decoy case %# by their ends", (sql, hidden) => {
    expect([...classify(sql).hidden].sort()).toEqual(hidden);
    for (const size of SPLITS) expect([...streamed(sql, size, 12).hidden].sort()).toEqual(hidden);
  });

  it("reads '…' with and without standard_conforming_strings: the SET after \\' is seen", () => {
    const sql = "SELECT 'x\\''; SET lock_timeout = '4444'; -- '";
    expect(streamed(sql, 5)).toMatchObject({ touches: true });
  });

  it("a statement longer than its head counts as touching the session, and the next ones are read", () => {
    const long = `SELECT length('${"x".repeat(STATEMENT_HEAD)}')`;
    for (const size of [4096, 65_536, 1 << 20]) {
      expect(streamed(long, size)).toMatchObject({ touches: true, creates: null, hidden: [] });
      expect(streamed(`${long}; SET app.after = 1; RESET work_mem`, size)).toMatchObject({
        touches: true,
        hidden: ["app.after"],
        resets: ["work_mem"],
      });
      // a ; inside the long literal ends nothing
      const tricky = `SELECT '${"x;".repeat(STATEMENT_HEAD)}', $$;$$; SET app.x = 1`;
      expect(streamed(tricky, size).hidden).toEqual(["app.x"]);
    }
  });

  it("finds the placeholder a set_config deep inside a long statement sets", () => {
    const deep = `SELECT length('${"y".repeat(3 * STATEMENT_HEAD)}'), SeT_CoNfIg('App.Deep', 'v', false)`;
    for (const size of [1, 100, 4096, 1 << 20]) {
      if (size === 1) continue; // a byte at a time over 200 kB: covered by the sizes above
      expect(streamed(deep, size).hidden).toEqual(["app.deep"]);
    }
    // set_config inside a literal or a comment in that part is not a call
    const hidden = `SELECT '${"y".repeat(STATEMENT_HEAD)} set_config(''a.b'', ''1'', false)' /* set_config('c.d','1',false) */`;
    expect(streamed(hidden, 4096).hidden).toEqual([]);
  });

  it("many short statements are classified in batches, never held to the end", () => {
    const many = Buffer.from("INSERT INTO t VALUES (1, 'a');".repeat(50_000));
    const q = new StreamedQuery();
    let most = 0;
    for (let i = 0; i < many.length; i += 65_536) {
      q.feed(many.subarray(i, i + 65_536));
      most = Math.max(most, q.keptBytes);
    }
    expect(q.result()).toEqual(NO_EFFECT);
    expect(most).toBeLessThan(many.length / 2);
    expect(streamed(`${many.toString()} SET app.last = 1`, 65_536).hidden).toEqual(["app.last"]);
  });
});
