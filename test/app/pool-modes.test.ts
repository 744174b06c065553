// The admin's writes through a pooler in statement and session mode. Every write is a transaction:
// in statement mode the pooler refuses them all, and the user must be told that plainly (a 503 that
// names the cause and keeps the text), with nothing half-written; in session mode they all work.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTestPooler } from "../support/pooler.ts";
import { createHarness, createUser, logIn, PASSWORD, textOf, type Harness } from "./support.ts";

const REFUSED = "refuses transactions (it runs in statement pooling mode)";
const ADD = "/admin/core/post/add/";

function harnessFor(mode: string): () => Harness {
  let h: Harness;
  beforeAll(async () => {
    const pooler = await startTestPooler({ POOL_MODE: mode, DEFAULT_POOL_SIZE: "2" });
    h = await createHarness({
      database: { url: pooler.url("app"), directUrl: inject("pgAppUrl"), close: pooler.stop },
    });
  }, 60_000);
  afterAll(() => h?.close());
  return () => h;
}

async function seedPost(h: Harness, title: string): Promise<number> {
  const [row] = await h.sql<{ id: number }>(
    "INSERT INTO core_post (title, content, updated_at) VALUES ($1, 'c', now()) RETURNING id",
    [title],
  );
  return row!.id;
}

describe("statement pooling", () => {
  const harness = harnessFor("statement");

  it("logs in, then refuses each write with a page that says why, keeping the text and writing nothing", async () => {
    const h = harness();
    const user = await createUser(h);
    const { agent, csrf } = await logIn(h.app, user.username);
    const id = await seedPost(h, "kept");

    const add = await agent
      .post(ADD)
      .type("form")
      .send({ _csrf: csrf, title: "new title", content: "typed" });
    expect(add.status).toBe(503);
    expect(textOf(add.text)).toContain(REFUSED);
    expect(add.text).toContain('value="new title"');
    expect(add.headers["retry-after"]).toBeUndefined();

    const version = (
      await h.sql<{ v: Date }>("SELECT updated_at AS v FROM core_post WHERE id = $1", [id])
    )[0]!.v;
    const change = await agent
      .post(`/admin/core/post/${id}/change/`)
      .type("form")
      .send({ _csrf: csrf, title: "changed", content: "typed", _version: version.toISOString() });
    expect(change.status).toBe(503);
    expect(textOf(change.text)).toContain(REFUSED);

    const writes = [
      agent.post(`/admin/core/post/${id}/delete/`).type("form").send({ _csrf: csrf, post: "yes" }),
      agent
        .post("/admin/core/post/")
        .type("form")
        .send({ _csrf: csrf, action: "delete_selected", _selected_action: String(id), post: "yes" }),
      agent.post("/admin/password_change/").type("form").send({
        _csrf: csrf,
        old_password: PASSWORD,
        new_password1: "another horse battery staple",
        new_password2: "another horse battery staple",
      }),
    ];
    for (const res of await Promise.all(writes)) {
      expect(res.status).toBe(503);
      expect(textOf(res.text)).toContain(`${REFUSED}, so nothing was saved or changed`);
    }

    expect(await h.sql("SELECT id, title FROM core_post")).toEqual([{ id, title: "kept" }]);
    expect(await h.sql("SELECT 1 FROM django_admin_log")).toEqual([]);
    const [stored] = await h.sql<{ password: string }>("SELECT password FROM auth_user WHERE id = $1", [
      user.id,
    ]);
    expect(stored!.password).toBe(user.password);
  });
});

describe("session pooling", () => {
  const harness = harnessFor("session");

  it("adds, changes and deletes posts, logged, and changes the password", async () => {
    const h = harness();
    const user = await createUser(h);
    const { agent, csrf } = await logIn(h.app, user.username);
    await agent.post(ADD).type("form").send({ _csrf: csrf, title: "one", content: "c" }).expect(302);
    const [post] = await h.sql<{ id: number; updated_at: Date }>("SELECT id, updated_at FROM core_post");
    await agent
      .post(`/admin/core/post/${post!.id}/change/`)
      .type("form")
      .send({ _csrf: csrf, title: "two", content: "c", _version: post!.updated_at.toISOString() })
      .expect(302);
    await agent
      .post(`/admin/core/post/${post!.id}/delete/`)
      .type("form")
      .send({ _csrf: csrf, post: "yes" })
      .expect(302);
    await agent
      .post("/admin/password_change/")
      .type("form")
      .send({
        _csrf: csrf,
        old_password: PASSWORD,
        new_password1: "another horse battery staple",
        new_password2: "another horse battery staple",
      })
      .expect(302);
    expect(await h.sql("SELECT 1 FROM core_post")).toEqual([]);
    const flags = await h.sql<{ action_flag: number }>(
      "SELECT action_flag FROM django_admin_log ORDER BY id",
    );
    expect(flags.map((f) => f.action_flag)).toEqual([1, 2, 3]);
  });
});
