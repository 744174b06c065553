// A query parameter given more than once counts by its last value, as Django's QueryDict.get reads
// it: ?p=1&p=2 is page 2, on every page and for every parameter the app reads.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import request from "supertest";
import { createHarness, createUser, logIn, type Agent, type Harness } from "./support.ts";

let h: Harness;
let agent: Agent;

beforeAll(async () => {
  h = await createHarness();
  ({ agent } = await logIn(h.app, (await createUser(h)).username));
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
