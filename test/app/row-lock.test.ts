// A save that waits for rows another transaction holds, as an admin's edit while a long batch job
// locks the post. It waits, as Django does; past Prisma's interactive-transaction timeout (5 s),
// Prisma rolls it back, and the page must say so, keep the text, and not blame an outage.
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createHarness, createUser, logIn, textOf, type Agent, type Harness } from "./support.ts";

/** Prisma's default interactive-transaction timeout, which the app keeps. */
const PRISMA_TIMEOUT_MS = 5000;
const TOOK_TOO_LONG = "took too long";

let h: Harness;
let agent: Agent;
let csrf: string;

beforeAll(async () => {
  h = await createHarness();
  const user = await createUser(h);
  ({ agent, csrf } = await logIn(h.app, user.username));
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  await h.sql("TRUNCATE core_post, django_admin_log");
});

/** Holds the post's row (SELECT … FOR UPDATE in an open transaction) for `ms`, then commits. */
async function lockPost(id: number, ms: number): Promise<{ released: Promise<void> }> {
  const locker = new pg.Client({ connectionString: h.database.directUrl });
  await locker.connect();
  await locker.query(`SET search_path TO ${h.schema}`);
  await locker.query("BEGIN");
  await locker.query("SELECT 1 FROM core_post WHERE id = $1 FOR UPDATE", [id]);
  const released = new Promise<void>((resolve) => setTimeout(resolve, ms)).then(async () => {
    await locker.query("COMMIT");
    await locker.end();
  });
  return { released };
}

async function openForm(title: string) {
  const saved = await h.db.prisma.post.create({ data: { title, content: "Body" } });
  const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
  return { saved, version: /name="_version" value="([^"]+)"/.exec(form.text)![1]! };
}

const save = (id: number, version: string, title: string) =>
  agent
    .post(`/admin/core/post/${id}/change/`)
    .type("form")
    .send({ _csrf: csrf, title, content: "Edited body", _version: version, _save: "Save" });

describe("a save waiting for a locked post", () => {
  it("waits for a lock shorter than the timeout, then saves", async () => {
    const { saved, version } = await openForm("Short wait");
    const { released } = await lockPost(saved.id, 1500);
    const started = Date.now();
    const res = await save(saved.id, version, "Saved after the wait");
    expect(res.status).toBe(302);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    await released;
    expect((await h.db.prisma.post.findUnique({ where: { id: saved.id } }))!.title).toBe(
      "Saved after the wait",
    );
  });

  it("past the timeout: 503, NOT saved, the text kept, no outage blamed; saving again works", async () => {
    const { saved, version } = await openForm("Original");
    const { released } = await lockPost(saved.id, PRISMA_TIMEOUT_MS + 1500);
    const res = await save(saved.id, version, "Edited <title>");
    await released;
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    const text = textOf(res.text);
    expect(text).toContain(
      `${TOOK_TOO_LONG} (another change may have been holding this post), so it was NOT saved`,
    );
    expect(text).not.toContain("could not be reached");
    expect(res.text).toContain('value="Edited &lt;title&gt;"');
    expect(res.text).toContain("Edited body</textarea>");
    const stored = await h.db.prisma.post.findUnique({ where: { id: saved.id } });
    expect(stored).toMatchObject({ title: "Original", content: "Body" });
    expect(await h.db.prisma.adminLog.count()).toBe(0);
    // The form still carries the version it was opened at, which nobody has changed since.
    const again = await save(
      saved.id,
      /name="_version" value="([^"]+)"/.exec(res.text)![1]!,
      "Edited <title>",
    );
    expect(again.status).toBe(302);
    expect((await h.db.prisma.post.findUnique({ where: { id: saved.id } }))!.title).toBe("Edited <title>");
  });

  it("a delete past the timeout: 503 saying nothing changed, with the request offered again", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Kept", content: "Body" } });
    const { released } = await lockPost(saved.id, PRISMA_TIMEOUT_MS + 1500);
    const res = await agent
      .post(`/admin/core/post/${saved.id}/delete/`)
      .type("form")
      .send({ _csrf: csrf, post: "yes" });
    await released;
    expect(res.status).toBe(503);
    const text = textOf(res.text);
    expect(text).toContain(`The change ${TOOK_TOO_LONG}`);
    expect(text).toContain("nothing was saved or changed");
    expect(res.text).toContain(`action="/admin/core/post/${saved.id}/delete/"`);
    expect(await h.db.prisma.post.count({ where: { id: saved.id } })).toBe(1);
  });
});
