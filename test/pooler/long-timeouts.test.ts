// Durations past what Node's timers take (2^31 - 1 ms, 24.8 days), which PgBouncer accepts: a
// longer delay would fire after 1 ms instead (Node's TimeoutOverflowWarning).
import { describe, expect, it } from "vitest";
import { cancelledSleep, connect, whoAmI } from "../support/clients.ts";
import { withTestPooler } from "../support/pooler.ts";

/** 34.7 days, in seconds. */
const LONG = "3000000";

describe("durations longer than a timer takes", () => {
  it("server_connect_timeout: a login is not cut after 1 ms", () =>
    withTestPooler({ SERVER_CONNECT_TIMEOUT: LONG }, async (p) => {
      expect(await whoAmI(p.url())).toBe("postgres");
    }));

  it("stats_period: the stats line is not written every millisecond", () =>
    withTestPooler({ STATS_PERIOD: LONG, LOG_STATS: "1" }, async (p) => {
      await new Promise((r) => setTimeout(r, 200));
      expect(p.logs.filter((l) => String(l.msg).startsWith("stats:"))).toEqual([]);
    }));

  it("cancel_wait_timeout: a cancel's connection to PostgreSQL sets no timer Node would cut short", () =>
    withTestPooler({ CANCEL_WAIT_TIMEOUT: LONG }, async (p) => {
      const overflows: string[] = [];
      const onWarning = (w: Error): void => {
        if (w.name === "TimeoutOverflowWarning") overflows.push(w.message);
      };
      process.on("warning", onWarning);
      const c = await connect(p.url());
      try {
        expect((await cancelledSleep(c, p.port)).err.code).toBe("57014");
        expect(overflows).toEqual([]);
      } finally {
        process.off("warning", onWarning);
        await c.end();
      }
    }));
});
