// A query parameter or a form field given more than once counts by its last value, as Django's
// QueryDict.get reads it: ?p=1&p=2 is page 2, on every page and for every parameter the app reads;
// only a field of several values (the changelist's checkboxes) keeps them all, as QueryDict.getlist.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import request from "supertest";
import { createHarness, createUser, csrfFrom, logIn, PASSWORD, type Agent, type Harness } from "./support.ts";

let h: Harness;
let agent: Agent;
let csrf: string;

beforeAll(async () => {
  h = await createHarness();
  ({ agent, csrf } = await logIn(h.app, (await createUser(h)).username));
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  await h.sql("TRUNCATE core_post");
});

/** Posts T000, T001, … created a minute apart, so that every order has one answer. */
async function addPosts(count: number): Promise<void> {
  await h.db.prisma.post.createMany({
    data: Array.from({ length: count }, (_, i) => ({
      title: `T${String(i).padStart(3, "0")}`,
      content: i % 2 === 0 ? "even" : "odd",
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
    })),
  });
}

const rowTitles = (html: string) =>
  [...html.matchAll(/<th class="field-title"><a href="[^"]+">([^<]*)<\/a><\/th>/g)].map((m) => m[1]);

describe("a repeated query parameter", () => {
  it("counts by its last value on the changelist: q, o, p and all", async () => {
    await addPosts(105);
    const searched = await agent.get("/admin/core/post/?q=nothing&q=odd&o=1").expect(200);
    expect(rowTitles(searched.text)).toHaveLength(52);
    expect(searched.text).toContain('name="q" value="odd"');
    const ordered = await agent.get("/admin/core/post/?o=-1&o=1").expect(200);
    expect(rowTitles(ordered.text).slice(0, 2)).toEqual(["T000", "T001"]);
    const paged = await agent.get("/admin/core/post/?o=1&p=1&p=2").expect(200);
    expect(rowTitles(paged.text)).toEqual(["T100", "T101", "T102", "T103", "T104"]);
    const all = await agent.get("/admin/core/post/?o=1&all=&all=").expect(200);
    expect(rowTitles(all.text)).toHaveLength(105);
    // the last value decides whether a page exists: page 3 of 2 is Django's ?e=1
    await agent.get("/admin/core/post/?p=1&p=3").expect(302).expect("Location", "/admin/core/post/?e=1");
  });

  it("counts by its last value when a bulk delete goes back to the changelist", async () => {
    await addPosts(201);
    const url = "/admin/core/post/?o=1&p=3&p=1";
    const page = await agent.get(url).expect(200);
    expect(rowTitles(page.text)[0]).toBe("T000");
    const id = /name="_selected_action" value="(\d+)"/.exec(page.text)![1]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const res = await agent
      .post(url)
      .type("form")
      .send({ _csrf: csrf, action: "delete_selected", _selected_action: id, post: "yes" })
      .expect(302);
    // page 1 is still there: back to it, not to the last page
    expect(res.headers.location).toBe(url);
  });

  it("counts by its last value in the filters the add and change pages carry", async () => {
    await addPosts(1);
    const filters = ["q=first", "q=second"].map((f) => `_changelist_filters=${encodeURIComponent(f)}`);
    const form = await agent.get(`/admin/core/post/add/?${filters.join("&")}`).expect(200);
    expect(form.text).toContain('<a href="/admin/core/post/?q=second">Posts</a>');
  });

  it("counts by its last value for the login page's next", async () => {
    const res = await request(h.app).get("/admin/login/?next=/admin/&next=/admin/core/post/").expect(200);
    expect(res.text).toContain('<input type="hidden" name="next" value="/admin/core/post/">');
  });

  it("counts by its last value for the post list's page", async () => {
    await addPosts(11);
    const res = await request(h.app).get("/?page=2&page=1").expect(200);
    expect(res.text).toContain("T010");
    expect(res.text).not.toContain("T000");
  });
});

/** A form body as a browser sends it, fields in this order, a name as often as it is given. */
const formBody = (fields: [string, string][]) => new URLSearchParams(fields).toString();

describe("a repeated form field", () => {
  it("counts by its last value for the login form's next", async () => {
    const user = await createUser(h);
    const browser = request.agent(h.app);
    const token = csrfFrom((await browser.get("/admin/login/").expect(200)).text);
    const body = formBody([
      ["_csrf", token],
      ["username", user.username],
      ["password", PASSWORD],
      ["next", "/admin/"],
      ["next", "/admin/core/post/"],
    ]);
    await browser
      .post("/admin/login/")
      .type("form")
      .send(body)
      .expect(302)
      .expect("Location", "/admin/core/post/");
  });

  it("counts by its last value for the change form's version: the form is not stale", async () => {
    await addPosts(1);
    const post = (await h.db.prisma.post.findFirst())!;
    const version = /name="_version" value="([^"]+)"/.exec(
      (await agent.get(`/admin/core/post/${post.id}/change/`).expect(200)).text,
    )![1]!;
    const body = formBody([
      ["_csrf", csrf],
      ["title", "old title"],
      ["title", "new title"],
      ["content", "text"],
      ["_version", "2000-01-01T00:00:00.000Z"],
      ["_version", version],
    ]);
    await agent
      .post(`/admin/core/post/${post.id}/change/`)
      .type("form")
      .send(body)
      .expect(302)
      .expect("Location", "/admin/core/post/");
    expect(await h.db.prisma.post.findUnique({ where: { id: post.id } })).toMatchObject({
      title: "new title",
    });
  });

  it("counts by its last value for the CSRF token, as Django's csrf_protect", async () => {
    const add = (tokens: string[]) =>
      agent
        .post("/admin/core/post/add/")
        .type("form")
        .send(
          formBody([...tokens.map((t): [string, string] => ["_csrf", t]), ["title", "t"], ["content", "c"]]),
        );
    await add([csrf, "forged"]).expect(403);
    await add(["forged", csrf]).expect(302);
    expect(await h.db.prisma.post.count()).toBe(1);
  });

  it("keeps every value of the changelist's checkboxes, and the last of the action's fields", async () => {
    await addPosts(3);
    const [a, b, c] = await h.db.prisma.post.findMany({ orderBy: { id: "asc" } });
    const body = formBody([
      ["_csrf", csrf],
      ["action", ""],
      ["action", "delete_selected"],
      ["_selected_action", String(a!.id)],
      ["_selected_action", String(b!.id)],
      ["post", "no"],
      ["post", "yes"],
    ]);
    await agent.post("/admin/core/post/").type("form").send(body).expect(302);
    expect((await h.db.prisma.post.findMany()).map((p) => p.id)).toEqual([c!.id]);
  });
});
