// A redirect must not reach the browser before the session it depends on is stored: browsers follow
// a 302 on its headers, and express-session sends those before its own save completes.
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import session from "express-session";
import { describe, expect, it } from "vitest";
import { saveSessionBeforeRedirect } from "../../app/auth/session.ts";

/** A store whose writes take a while, as a database under load. */
class SlowStore extends session.MemoryStore {
  lastSetDone = 0;
  override set(sid: string, data: session.SessionData, cb?: (err?: unknown) => void): void {
    setTimeout(() => {
      super.set(sid, data, (err?: unknown) => {
        this.lastSetDone = Date.now();
        cb?.(err);
      });
    }, 300);
  }
}

async function headersArriveAfterSave(withFix: boolean): Promise<boolean> {
  const store = new SlowStore();
  const app = express();
  app.use(session({ secret: "x".repeat(40), store, resave: false, saveUninitialized: false }));
  if (withFix) app.use(saveSessionBeforeRedirect);
  app.post("/save", (req, res) => {
    (req.session as unknown as { note: string }).note = "saved";
    res.redirect("/next");
  });
  const server = app.listen(0);
  await new Promise((r) => server.once("listening", r));
  try {
    const { port } = server.address() as AddressInfo;
    const headersAt = await new Promise<number>((resolve, reject) => {
      const req = http.request({ port, method: "POST", path: "/save" }, (res) => {
        resolve(Date.now());
        res.resume();
      });
      req.on("error", reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 400));
    return store.lastSetDone > 0 && headersAt >= store.lastSetDone;
  } finally {
    server.close();
  }
}

describe("saveSessionBeforeRedirect", () => {
  it("holds the redirect until the session is stored (express-session alone does not)", async () => {
    expect(await headersArriveAfterSave(false)).toBe(false);
    expect(await headersArriveAfterSave(true)).toBe(true);
  });
});
