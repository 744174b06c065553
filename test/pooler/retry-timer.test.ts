// The pool's retry timer against Date.now(). A failed login dates the next attempt with Date.now()
// (retryAfter) and sets a timer for it; timers run on the monotonic clock, whose milliseconds do
// not tick with the wall clock's (and the wall clock may be slewed), so the timer can fire just
// before retryAfter. A pool that then launched nothing and set no new timer left its clients
// waiting for ever: the restart test hung in about one run in seven, always the same way (one
// failed login logged, none after). Here the wall clock runs 2 % slow, so every timer fires early.
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { connect } from "../support/clients.ts";
import { withTestPooler } from "../support/pooler.ts";
import { freePort } from "../support/ports.ts";
import { relay } from "../support/relay.ts";

const DOWN_MS = 1000;

describe("the pool's retry timer", () => {
  afterEach(() => vi.restoreAllMocks());

  it("serves a client that waited through an outage even when timers fire before retryAfter", async () => {
    const port = await freePort();
    const realNow = Date.now.bind(Date);
    const start = realNow();
    vi.spyOn(Date, "now").mockImplementation(() => Math.floor(start + (realNow() - start) * 0.98));
    await withTestPooler(
      { DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/app` },
      async (p) => {
        // nothing listens yet: connection refused, and the pool retries 100 ms, 200 ms, … apart
        const served = connect(p.url("app")).then(async (c) => {
          const r = await c.query("SELECT 1 AS one");
          await c.end();
          return r.rows[0].one as number;
        });
        served.catch(() => undefined); // when a client still waits, the race below says so; the pooler stopping then fails it
        await new Promise((r) => setTimeout(r, DOWN_MS));
        const up = await relay({ host: "127.0.0.1", port }, { host: "127.0.0.1", port: inject("pgPort") });
        try {
          const upAt = performance.now();
          const deadline = new Promise<string>((r) => setTimeout(() => r("still waiting after 5 s"), 5000));
          expect(await Promise.race([served, deadline])).toBe(1);
          const after = performance.now() - upAt;
          console.log(
            `retry timer firing early: client served ${after.toFixed(0)} ms after the server came up`,
          );
          // the backoff between attempts is at most 1 s
          expect(after).toBeLessThan(3000);
        } finally {
          up.close();
        }
      },
    );
  }, 20_000);
});
