// Two tabs of one browser at once: a login ended in one tab (log out, log in again, a password
// change) while the other tab's request is still running. As Django's SessionMiddleware, the
// request that finishes later must not write the ended session back (Django: SessionInterrupted).
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createHarness,
  createUser,
  csrfFrom,
  logIn,
  PASSWORD,
  sessionCookie,
  type Harness,
} from "./support.ts";
import { waitFor } from "../support/wait.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

/** Holds the post's row in an open transaction until release(), so that a save of it waits. */
async function lockPost(id: number): Promise<{ release(): Promise<void> }> {
  const locker = new pg.Client({ connectionString: h.database.directUrl });
  await locker.connect();
  await locker.query("BEGIN");
  await locker.query(`SELECT 1 FROM ${h.schema}.core_post WHERE id = $1 FOR UPDATE`, [id]);
  return {
    async release() {
      await locker.query("COMMIT");
      await locker.end();
    },
  };
}

/** Whether the store holds the session of a `sessionid=s:<sid>.<signature>` cookie. */
async function stored(cookie: string): Promise<boolean> {
  const sid = /^sessionid=s:([^.]+)\./.exec(decodeURIComponent(cookie))![1];
  return (await h.sql("SELECT 1 FROM session WHERE sid = $1", [sid])).length > 0;
}

/** Resolves once a statement of the app waits for a row lock (the post held by lockPost). */
const saveWaiting = () =>
  waitFor(
    async () =>
      (await h.sql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%'"))
        .length > 0,
    "the save to wait for the post's row",
  );

/**
 * Saves a post in one tab of a logged-in browser, and runs `meanwhile` (the other tab) while the
 * save waits for the post's row; returns the save's response, once the row is let go.
 */
async function saveWhile(login: Awaited<ReturnType<typeof logIn>>, meanwhile: () => Promise<void>) {
  const { agent } = login;
  const post = await h.db.prisma.post.create({ data: { title: "Open in two tabs", content: "Body" } });
  const form = await agent.get(`/admin/core/post/${post.id}/change/`).expect(200);
  const version = /name="_version" value="([^"]+)"/.exec(form.text)![1]!;
  const fields = { _csrf: csrfFrom(form.text), title: "Saved late", content: "Body", _version: version };
  const lock = await lockPost(post.id);
  const saving = agent
    .post(`/admin/core/post/${post.id}/change/`)
    .type("form")
    .send(fields)
    .then((res) => res);
  try {
    await saveWaiting();
    await meanwhile();
  } finally {
    await lock.release();
  }
  const saved = await saving;
  // The post is saved whatever happened to the login.
  expect(saved.status).toBe(302);
  expect((await h.db.prisma.post.findUnique({ where: { id: post.id } }))!.title).toBe("Saved late");
  return saved;
}

describe("a session ended in one tab while the other tab saves", () => {
  it("logging out is not undone by the other tab's save finishing later", async () => {
    const user = await createUser(h);
    const login = await logIn(h.app, user.username);
    const saved = await saveWhile(login, async () => {
      await login.agent.post("/admin/logout/").type("form").send({ _csrf: login.csrf }).expect(200);
      expect(await stored(login.session)).toBe(false);
    });
    // The ended login is not brought back, neither in the store nor in the browser.
    expect(await stored(login.session)).toBe(false);
    expect(sessionCookie(saved)).toBeUndefined();
    await login.agent.get("/admin/").expect(302).expect("Location", "/admin/login/?next=/admin/");
  });

  it("a password change keeps this browser logged in, though the other tab's save ends later", async () => {
    const user = await createUser(h);
    const login = await logIn(h.app, user.username);
    const saved = await saveWhile(login, async () => {
      const password = "violet-tugboat-91";
      await login.agent
        .post("/admin/password_change/")
        .type("form")
        .send({ _csrf: login.csrf, old_password: PASSWORD, new_password1: password, new_password2: password })
        .expect(302);
    });
    // Sending back the id from before the change (whose hash is the old password's) would log out.
    expect(sessionCookie(saved)).toBeUndefined();
    expect(await stored(login.session)).toBe(false);
    await login.agent.get("/admin/").expect(200);
  });
});
