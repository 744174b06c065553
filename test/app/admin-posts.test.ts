// The posts admin: add / change / delete with Django's messages, validation that keeps the input,
// stale forms, the changelist's search, ordering and pages, the bulk delete action, and saves that wait
// for a locked post.
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createHarness, createUser, logIn, textOf, type Agent, type Harness } from "./support.ts";

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

const post = (url: string, fields: Record<string, string | string[]>) =>
  agent
    .post(url)
    .type("form")
    .send({ _csrf: csrf, ...fields });

const countPosts = () => h.db.prisma.post.count();

/** The messages shown on the next page. */
async function messagesAt(url: string, as: Agent = agent): Promise<string[]> {
  const res = await as.get(url).expect(200);
  const list = /<ul class="messagelist">([\s\S]*?)<\/ul>/.exec(res.text)?.[1] ?? "";
  // the post's name in a message may be a link, read here as its text
  return [...list.matchAll(/<li class="(\w+)">([\s\S]*?)<\/li>/g)].map(
    (m) => `${m[1]}: ${textOf(m[2]!.replace(/<\/?a\b[^>]*>/g, ""))}`,
  );
}

function version(html: string): string {
  return /name="_version" value="([^"]+)"/.exec(html)![1]!;
}

describe("index", () => {
  it("lists the Posts model with Add and Change links", async () => {
    const res = await agent.get("/admin/").expect(200);
    expect(res.text).toContain("<title>Site administration | Django site admin</title>");
    expect(res.text).toContain('<a href="/admin/core/post/">Posts</a>');
    expect(res.text).toContain('<a href="/admin/core/post/add/" class="addlink">Add</a>');
  });

  it("matches URLs in their exact case, as Django: /ADMIN/core/post/ is a 404", async () => {
    for (const url of [
      "/ADMIN/core/post/",
      "/admin/CORE/post/",
      "/admin/core/Post/add/",
      "/Admin/",
      "/STATIC/site.css",
    ]) {
      await agent.get(url).expect(404);
    }
    await agent.get("/admin/core/post/").expect(200);
    await agent.get("/static/site.css").expect(200);
  });
});

describe("app index", () => {
  it("lists the core app's models at /admin/core/, linked from the breadcrumbs, as Django's app_index", async () => {
    const res = await agent.get("/admin/core/").expect(200);
    expect(res.text).toContain("<h1>Core administration</h1>");
    expect(res.text).toContain('<a href="/admin/core/post/">Posts</a>');
    expect(res.text).not.toContain("Recent actions");
    expect(textOf(res.text)).toContain("Home › Core");
    const changelist = await agent.get("/admin/core/post/").expect(200);
    expect(changelist.text).toContain('<a href="/admin/core/">Core</a>');
    const staff = await logIn(h.app, (await createUser(h, { isSuperuser: false })).username);
    await staff.agent.get("/admin/core/").expect(404);
  });
});

describe("preserved filters (Django's preserve_filters)", () => {
  const carried = "_changelist_filters=q%3Dkeep%26p%3D1%26o%3D1";
  const back = "/admin/core/post/?q=keep&p=1&o=1";

  it("carries the changelist's search, page and order to the add and change pages and back", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "keep me", content: "x" } });
    const list = await agent.get("/admin/core/post/?q=keep&p=1&o=1").expect(200);
    expect(list.text).toContain(`href="/admin/core/post/${saved.id}/change/?${carried}"`);
    expect(list.text).toContain(`href="/admin/core/post/add/?${carried}" class="addlink"`);
    const form = await agent.get(`/admin/core/post/${saved.id}/change/?${carried}`).expect(200);
    expect(form.text).toContain(`action="/admin/core/post/${saved.id}/change/?${carried}"`);
    expect(form.text).toContain(`<a href="${back.replace(/&/g, "&amp;")}">Posts</a>`);
    expect(form.text).toContain(`href="/admin/core/post/${saved.id}/delete/?${carried}" class="deletelink"`);
    const fields = { title: "kept", content: "x", _version: version(form.text) };
    const saveTo = (extra: Record<string, string>) =>
      post(`/admin/core/post/${saved.id}/change/?${carried}`, { ...fields, ...extra }).expect(302);
    expect((await saveTo({ _continue: "" })).headers.location).toBe(
      `/admin/core/post/${saved.id}/change/?${carried}`,
    );
    const again = await agent.get(`/admin/core/post/${saved.id}/change/?${carried}`).expect(200);
    fields._version = version(again.text);
    expect((await saveTo({ _save: "Save" })).headers.location).toBe(back);
    const added = await post(`/admin/core/post/add/?${carried}`, {
      title: "new",
      content: "x",
      _save: "Save",
    });
    expect(added.headers.location).toBe(back);
  });

  it("goes back to the changelist as it was after a delete; ignores what is not the changelist's", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "gone", content: "x" } });
    const confirm = await agent.get(`/admin/core/post/${saved.id}/delete/?${carried}`).expect(200);
    expect(confirm.text).toContain(`action="/admin/core/post/${saved.id}/delete/?${carried}"`);
    const res = await post(`/admin/core/post/${saved.id}/delete/?${carried}`, { post: "yes" }).expect(302);
    expect(res.headers.location).toBe(back);
    const tampered = encodeURIComponent("q=x&next=//evil.example&e=1");
    const add = await post(`/admin/core/post/add/?_changelist_filters=${tampered}`, {
      title: "t",
      content: "x",
    });
    expect(add.headers.location).toBe("/admin/core/post/?q=x");
  });
});

describe("add", () => {
  it("shows Django's add form", async () => {
    const res = await agent.get("/admin/core/post/add/").expect(200);
    expect(res.text).toContain("<h1>Add post</h1>");
    expect(res.text).toMatch(
      /<input type="text" name="title" id="id_title" value="" maxlength="255" required autofocus>/,
    );
    expect(res.text).toMatch(/<textarea name="content" id="id_content"[^>]*required>/);
    for (const button of ["Save", "Save and add another", "Save and continue editing"]) {
      expect(res.text).toContain(`value="${button}"`);
    }
  });

  it("fills the add form from the query string, as Django's get_changeform_initial_data", async () => {
    const query = new URLSearchParams({ title: 'Say "hi"', content: "line 1\nline 2", other: "x" });
    const res = await agent.get(`/admin/core/post/add/?${query}`).expect(200);
    expect(res.text).toContain('id="id_title" value="Say &#34;hi&#34;"');
    expect(res.text).toMatch(/<textarea name="content"[^>]*>\nline 1\nline 2<\/textarea>/);
  });

  it("saves and returns to the changelist with Django's message", async () => {
    const res = await post("/admin/core/post/add/", {
      title: "First post",
      content: "Hello",
      _save: "Save",
    }).expect(302);
    expect(res.headers.location).toBe("/admin/core/post/");
    expect(await messagesAt(res.headers.location!)).toEqual([
      "success: The post “First post” was added successfully.",
    ]);
    expect(await messagesAt("/admin/core/post/")).toEqual([]); // shown once
    expect(await h.db.prisma.post.findFirst()).toMatchObject({ title: "First post", content: "Hello" });
  });

  it("keeps the message for the next real page when a stray request (404, favicon) comes first", async () => {
    const res = await post("/admin/core/post/add/", { title: "Kept", content: "x", _save: "Save" }).expect(
      302,
    );
    await agent.get("/favicon.ico").expect(204);
    await agent.get("/no/such/page/").expect(404);
    expect(await messagesAt(res.headers.location!)).toEqual([
      "success: The post “Kept” was added successfully.",
    ]);
  });

  it("'Save and add another' returns to an empty add form", async () => {
    const res = await post("/admin/core/post/add/", { title: "One", content: "x", _addanother: "1" }).expect(
      302,
    );
    expect(res.headers.location).toBe("/admin/core/post/add/");
    expect(await messagesAt(res.headers.location!)).toEqual([
      "success: The post “One” was added successfully. You may add another post below.",
    ]);
  });

  it("'Save and continue editing' opens the new post's change form", async () => {
    const res = await post("/admin/core/post/add/", { title: "Draft", content: "x", _continue: "1" }).expect(
      302,
    );
    const created = await h.db.prisma.post.findFirstOrThrow();
    expect(res.headers.location).toBe(`/admin/core/post/${created.id}/change/`);
    expect(await messagesAt(res.headers.location!)).toEqual([
      "success: The post “Draft” was added successfully. You may edit it again below.",
    ]);
  });

  it("links the post's name in the added and changed messages to its change page, as Django", async () => {
    // a title that also names the model: only the name itself is the link
    const added = await post("/admin/core/post/add/", { title: "post <b>", content: "x", _continue: "1" });
    const page = (await agent.get(added.headers.location!).expect(200)).text;
    const link = `<a href="${added.headers.location!}">post &lt;b&gt;</a>`;
    expect(page).toContain(
      `<li class="success">The post “${link}” was added successfully. You may edit it again`,
    );
    const changed = await post(added.headers.location!, {
      title: "post <b>",
      content: "y",
      _version: version(page),
      _save: "Save",
    }).expect(302);
    const list = (await agent.get(changed.headers.location!).expect(200)).text;
    expect(list).toContain(`<li class="success">The post “${link}” was changed successfully.</li>`);
  });
});

describe("request size", () => {
  it("saves a post of up to 2.5 MB (Django's DATA_UPLOAD_MAX_MEMORY_SIZE); above, a 400 page that says why", async () => {
    const big = "x".repeat(2_400_000);
    await post("/admin/core/post/add/", { title: "Big", content: big, _save: "Save" }).expect(302);
    expect((await h.db.prisma.post.findFirstOrThrow({ where: { title: "Big" } })).content).toHaveLength(
      big.length,
    );
    const res = await post("/admin/core/post/add/", { title: "Bigger", content: "x".repeat(2_700_000) });
    expect(res.status).toBe(400);
    expect(textOf(res.text)).toContain(
      "The submitted data is too large: a form may send at most 2.5 MB, so nothing was saved.",
    );
    expect(await h.db.prisma.post.count({ where: { title: "Bigger" } })).toBe(0);
  });
});

describe("validation", () => {
  it("refuses an empty title (200 with the errors, as Django), keeps the input and saves nothing", async () => {
    const res = await post("/admin/core/post/add/", { title: "  ", content: "My long text\nkept" }).expect(
      200,
    );
    expect(res.text).toContain("Please correct the error below.");
    expect(res.text).toContain('<ul class="errorlist" id="id_title_error">');
    expect(res.text).toContain("This field is required.");
    expect(res.text).toContain("My long text\nkept</textarea>");
    expect(await countPosts()).toBe(0);
  });

  it("refuses a title over 255 characters, saying how long it is", async () => {
    const title = "x".repeat(300);
    const res = await post("/admin/core/post/add/", { title, content: "c" }).expect(200);
    expect(res.text).toContain("Ensure this value has at most 255 characters (it has 300).");
    expect(res.text).toContain(`value="${title}"`);
    expect(await countPosts()).toBe(0);
  });

  it("refuses a missing content field, and both errors at once", async () => {
    const res = await post("/admin/core/post/add/", { title: "Kept title" }).expect(200);
    expect(res.text).toContain('<ul class="errorlist" id="id_content_error">');
    expect(res.text).toContain('value="Kept title"');
    const both = await post("/admin/core/post/add/", {}).expect(200);
    expect(both.text).toContain("Please correct the errors below.");
    expect(await countPosts()).toBe(0);
  });

  it("refuses NUL characters instead of failing in PostgreSQL", async () => {
    const res = await post("/admin/core/post/add/", { title: "a\u0000b", content: "c" }).expect(200);
    expect(res.text).toContain("Null characters are not allowed.");
  });

  it("keeps the stored post unchanged when a change is invalid", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Original", content: "Body" } });
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    const res = await post(`/admin/core/post/${saved.id}/change/`, {
      title: "",
      content: "Edited body",
      _version: version(form.text),
    }).expect(200);
    expect(res.text).toContain("Edited body</textarea>");
    expect(await h.db.prisma.post.findUnique({ where: { id: saved.id } })).toMatchObject({
      title: "Original",
    });
  });
});

describe("change", () => {
  it("shows the post and saves changes with Django's message", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Before", content: "Body" } });
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    expect(form.text).toContain("<h1>Change post</h1>");
    // Django's base_site.html puts the change view's subtitle, the post, first in the page title
    expect(form.text).toContain("<title>Before | Change post | Django site admin</title>");
    expect(form.text).toContain('value="Before"');
    expect(form.text).toContain(
      `<a href="/admin/core/post/${saved.id}/delete/" class="deletelink">Delete</a>`,
    );
    // Django's object tools: the post has a page of its own on the site (get_absolute_url)
    expect(form.text).toContain(`<a href="/posts/${saved.id}" class="viewsitelink">View on site</a>`);
    const res = await post(`/admin/core/post/${saved.id}/change/`, {
      title: "After",
      content: "New body",
      _version: version(form.text),
      _save: "Save",
    }).expect(302);
    expect(res.headers.location).toBe("/admin/core/post/");
    expect(await messagesAt("/admin/core/post/")).toEqual([
      "success: The post “After” was changed successfully.",
    ]);
    expect(await h.db.prisma.post.findUnique({ where: { id: saved.id } })).toMatchObject({
      title: "After",
      content: "New body",
    });
  });

  it("redirects Django's old object URL to the change page (302, RedirectView's default)", async () => {
    await agent.get("/admin/core/post/7/").expect(302).expect("Location", "/admin/core/post/7/change/");
  });

  it("reads the URL's id as Django's get_object does (Python's int(): 01, +1, fullwidth digits)", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Read by int()", content: "x" } });
    const fullwidth = String(saved.id).replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));
    for (const id of [`0${saved.id}`, `+${saved.id}`, fullwidth]) {
      const path = `/admin/core/post/${encodeURIComponent(id)}`;
      const change = await agent.get(`${path}/change/`).expect(200);
      expect(change.text).toContain('value="Read by int()"');
      await agent.get(`${path}/history/`).expect(200);
      await agent.get(`${path}/delete/`).expect(200);
    }
  });

  it("sends a tampered or unknown id to the admin index with Django's warning", async () => {
    for (const id of ["999999", "abc", "0", "1;DROP TABLE core_post", "99999999999"]) {
      const path = `/admin/core/post/${encodeURIComponent(id)}`;
      // Django's message is "post with ID …", shown by the admin's base.html with |capfirst
      const warning = `warning: Post with ID “${id}” doesn’t exist. Perhaps it was deleted?`;
      for (const request of [
        () => agent.get(`${path}/change/`),
        () => agent.get(`${path}/delete/`),
        () => agent.get(`${path}/history/`),
        () => post(`${path}/delete/`, { post: "yes" }),
      ]) {
        await request().expect(302).expect("Location", "/admin/");
        expect(await messagesAt("/admin/")).toEqual([warning]);
      }
    }
  });

  it("refuses to overwrite a newer edit (stale form: 409) and keeps the user's text", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Shared", content: "v1" } });
    const mine = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    // Someone else saves first.
    await h.db.prisma.post.update({ where: { id: saved.id }, data: { content: "their edit" } });
    const res = await post(`/admin/core/post/${saved.id}/change/`, {
      title: "Shared",
      content: "my edit",
      _version: version(mine.text),
    }).expect(409);
    expect(res.text).toContain("This post was changed by someone else after you opened it.");
    expect(res.text).toContain("my edit</textarea>");
    expect((await h.db.prisma.post.findUniqueOrThrow({ where: { id: saved.id } })).content).toBe(
      "their edit",
    );
    // Saving again, now knowingly, replaces their version.
    await post(`/admin/core/post/${saved.id}/change/`, {
      title: "Shared",
      content: "my edit",
      _version: version(res.text),
    }).expect(302);
    expect((await h.db.prisma.post.findUniqueOrThrow({ where: { id: saved.id } })).content).toBe("my edit");
  });

  it("takes the same form sent twice (a second click on Save) as the save it is, not as someone else's edit", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Twice", content: "v1" } });
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    const send = () =>
      post(`/admin/core/post/${saved.id}/change/`, {
        title: "Twice",
        content: "v2",
        _version: version(form.text),
        _save: "Save",
      });
    await send().expect(302);
    // The browser shows the answer to the second request, which must not say the save failed.
    const again = await send().expect(302);
    expect(again.headers.location).toBe("/admin/core/post/");
    expect(await messagesAt("/admin/core/post/")).toEqual([
      "success: The post “Twice” was changed successfully.",
      "success: The post “Twice” was changed successfully.",
    ]);
    expect((await h.db.prisma.post.findUniqueOrThrow({ where: { id: saved.id } })).content).toBe("v2");
    // Saved once, logged once.
    expect(await h.db.prisma.adminLog.count({ where: { objectId: String(saved.id) } })).toBe(1);
  });

  it("saves a post whose updated_at has microseconds (set outside the app); a made-up version is stale", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Imported", content: "v1" } });
    await h.sql("UPDATE core_post SET updated_at = '2026-01-02 03:04:05.123456+00' WHERE id = $1", [
      saved.id,
    ]);
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    expect(version(form.text)).toBe("2026-01-02T03:04:05.123Z");
    await post(`/admin/core/post/${saved.id}/change/`, {
      title: "Imported",
      content: "edited",
      _version: version(form.text),
    }).expect(302);
    expect((await h.db.prisma.post.findUniqueOrThrow({ where: { id: saved.id } })).content).toBe("edited");
    // Dates PostgreSQL cannot store, or that no form carried: "changed by someone else", not a 500.
    for (const made_up of [
      "0000-01-01T00:00:00Z",
      "-271821-04-20T00:00:00Z",
      "+275760-09-13T00:00:00Z",
      "soon",
    ]) {
      const res = await post(`/admin/core/post/${saved.id}/change/`, {
        title: "Imported",
        content: "edited again",
        _version: made_up,
      }).expect(409);
      expect(res.text).toContain("edited again</textarea>");
    }
  });

  it("offers the text as a new post when the post was deleted meanwhile (404)", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Doomed", content: "old" } });
    const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
    await h.db.prisma.post.delete({ where: { id: saved.id } });
    const res = await post(`/admin/core/post/${saved.id}/change/`, {
      title: "Doomed",
      content: "my precious edit",
      _version: version(form.text),
    }).expect(404);
    expect(textOf(res.text)).toContain(`post with ID “${saved.id}” doesn’t exist. Perhaps it was deleted?`);
    expect(res.text).toContain("my precious edit</textarea>");
    expect(res.text).toContain('action="/admin/core/post/add/"');
  });
});

describe("delete", () => {
  it("asks for confirmation, then deletes with Django's message", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Bye", content: "x" } });
    const page = await agent.get(`/admin/core/post/${saved.id}/delete/`).expect(200);
    // Django 5.2's title (#35639): "Delete", as the last breadcrumb; the question follows below it
    expect(page.text).toContain("<title>Delete | Django site admin</title>");
    expect(page.text).toContain("<h1>Delete</h1>");
    expect(textOf(page.text)).toContain("Are you sure you want to delete the post “Bye”?");
    expect(page.text).toContain('value="Yes, I’m sure"');
    expect(page.text).toContain("No, take me back");
    expect(await countPosts()).toBe(1);
    const res = await post(`/admin/core/post/${saved.id}/delete/`, { post: "yes" }).expect(302);
    expect(res.headers.location).toBe("/admin/core/post/");
    expect(await messagesAt("/admin/core/post/")).toEqual([
      "success: The post “Bye” was deleted successfully.",
    ]);
    expect(await countPosts()).toBe(0);
  });
});

describe("changelist", () => {
  async function addPosts(titles: string[]) {
    for (const [i, title] of titles.entries()) {
      await h.db.prisma.post.create({
        data: {
          title,
          content: `about ${title.toLowerCase()}`,
          createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
        },
      });
    }
  }

  const rowTitles = (html: string) =>
    [...html.matchAll(/<th class="field-title"><a href="[^"]+">([^<]*)<\/a><\/th>/g)].map((m) => m[1]);

  it("counts posts in Django's words and links each title to its change page", async () => {
    const empty = await agent.get("/admin/core/post/").expect(200);
    expect(textOf(empty.text)).toContain("0 posts");
    await addPosts(["Only"]);
    const one = await agent.get("/admin/core/post/").expect(200);
    expect(textOf(one.text)).toContain("1 post");
    expect(one.text).toContain("<h1>Select post to change</h1>");
    expect(one.text).toContain('class="addlink">Add post</a>');
  });

  it("shows no table when nothing is listed and no actions when there are no posts at all, as Django", async () => {
    const empty = (await agent.get("/admin/core/post/").expect(200)).text;
    expect(empty).not.toContain('id="result_list"');
    expect(empty).not.toContain('name="action"');
    await addPosts(["Only"]);
    // Django's show_admin_actions counts every post, its {% if results %} only those listed
    const none = (await agent.get("/admin/core/post/?q=nothing").expect(200)).text;
    expect(none).not.toContain('id="result_list"');
    expect(none).toContain('name="action"');
    const one = (await agent.get("/admin/core/post/").expect(200)).text;
    expect(one).toContain('id="result_list"');
    expect(one).toContain('name="action"');
  });

  it("searches title and content, case-insensitively: 'N results (M total)'", async () => {
    await addPosts(["PgBouncer basics", "Django admin", "Pooling modes"]);
    const res = await agent.get("/admin/core/post/?q=POOL").expect(200);
    expect(rowTitles(res.text)).toEqual(["Pooling modes"]);
    expect(textOf(res.text)).toContain("1 result ( 3 total )");
    const words = await agent.get("/admin/core/post/?q=about%20django").expect(200);
    expect(rowTitles(words.text)).toEqual(["Django admin"]);
    // LIKE wildcards are searched for literally, as Django does.
    for (const q of ["%25", "_", "%5C"]) {
      const none = await agent.get(`/admin/core/post/?q=${q}`).expect(200);
      expect(textOf(none.text)).toContain("0 results ( 3 total )");
    }
  });

  it("searches with text of any length, and shows an invalid search as Django's ChangeList: a message over the whole list", async () => {
    await addPosts(["Pooling modes", "Django admin"]);
    // Django's search field has no max_length: a pasted paragraph is searched, not refused
    const long = `${"pooling ".repeat(300)}modes`;
    const found = await agent.get(`/admin/core/post/?q=${encodeURIComponent(long)}`).expect(200);
    expect(rowTitles(found.text)).toEqual(["Pooling modes"]);
    // a NUL fails the search form: messages.error, and the query is ""
    const nul = await agent.get("/admin/core/post/?q=pool%00").expect(200);
    expect(textOf(nul.text)).toContain("Null characters are not allowed.");
    expect(rowTitles(nul.text).sort()).toEqual(["Django admin", "Pooling modes"]);
  });

  it("searches for at most 100 different words: more is an error message over the whole list, as a NUL", async () => {
    await addPosts(["Pooling modes", "Django admin"]);
    const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);
    // a word repeated counts once: the search is the same
    const hundred = [...words(99), "pooling", "pooling"].join("+");
    const some = await agent.get(`/admin/core/post/?q=${hundred}`).expect(200);
    expect(textOf(some.text)).not.toContain("at most 100");
    expect(rowTitles(some.text)).toEqual([]);
    // Prisma compiles each new number of terms on the event loop (seconds for thousands of them,
    // while no other request is answered), so a search of more is refused
    const more = await agent.get(`/admin/core/post/?q=${[...words(100), "pooling"].join("+")}`).expect(200);
    expect(textOf(more.text)).toContain("Ensure this search has at most 100 different words (it has 101).");
    expect(rowTitles(more.text).sort()).toEqual(["Django admin", "Pooling modes"]);
  });

  it("says 'N results (M total)' only when the search leaves posts out, as Django's show_result_count", async () => {
    await addPosts(["Pooling modes", "Pooling limits"]);
    const every = await agent.get("/admin/core/post/?q=pooling").expect(200);
    expect(rowTitles(every.text)).toHaveLength(2);
    expect(every.text).not.toContain('class="small quiet"');
    expect(textOf(every.text)).not.toContain("total");
    await addPosts(["Django admin"]);
    // Django's link is "?": the whole list, without the search or the order.
    const some = await agent.get("/admin/core/post/?q=pooling&o=1").expect(200);
    expect(some.text).toContain('<span class="small quiet">2 results (<a href="?">3 total</a>)</span>');
  });

  it("orders by a column with o=, newest first by default", async () => {
    await addPosts(["b", "c", "a"]);
    expect(rowTitles((await agent.get("/admin/core/post/").expect(200)).text)).toEqual(["a", "c", "b"]);
    const byTitle = await agent.get("/admin/core/post/?o=1").expect(200);
    expect(rowTitles(byTitle.text)).toEqual(["a", "b", "c"]);
    expect(byTitle.text).toContain('aria-sort="ascending"');
    expect(byTitle.text).toContain('href="?o=-1"'); // clicking again reverses
    expect(rowTitles((await agent.get("/admin/core/post/?o=-1").expect(200)).text)).toEqual(["c", "b", "a"]);
    expect(rowTitles((await agent.get("/admin/core/post/?o=2").expect(200)).text)).toEqual(["b", "c", "a"]);
    await agent.get("/admin/core/post/?o=banana").expect(200); // ignored, as Django does
  });

  it("reads each o= column as Django's get_ordering: int() of what follows the last '-'", async () => {
    await addPosts(["b", "c", "a"]);
    const titles = async (o: string) =>
      rowTitles((await agent.get(`/admin/core/post/?o=${encodeURIComponent(o)}`).expect(200)).text);
    for (const o of ["01", "+1", " 1 ", "１", "0.1", "7.1"])
      expect(await titles(o), o).toEqual(["a", "b", "c"]);
    for (const o of ["-01", "x-1", "--1"]) expect(await titles(o), o).toEqual(["c", "b", "a"]);
    const html = (await agent.get("/admin/core/post/?o=-01").expect(200)).text;
    expect(html).toContain('aria-sort="descending"');
    expect(html).toContain('href="?o=1"'); // the header's links write it as Django's do
  });

  it("offers Django's sort options on each sorted header: make primary (reversed), toggle in place, remove", async () => {
    await addPosts(["Only"]);
    const html = (await agent.get("/admin/core/post/?o=2.1").expect(200)).text;
    const header = (label: string) => {
      const th = html.split("<th ").find((cell) => cell.includes(`>${label}</a>`))!;
      return {
        primary: new RegExp(`href="([^"]*)">${label}</a>`).exec(th)![1],
        toggle: /class="toggle \w+" href="([^"]*)"/.exec(th)?.[1],
        remove: /class="sortremove" href="([^"]*)"/.exec(th)?.[1],
        priority: /<span class="sortpriority" title="Sorting priority: (\d)">/.exec(th)?.[1],
      };
    };
    expect(header("Created")).toEqual({
      primary: "?o=-2.1",
      toggle: "?o=-2.1",
      remove: "?o=1",
      priority: "1",
    });
    // Django's url_primary reverses a sorted column even when it was not the primary one
    expect(header("Title")).toEqual({ primary: "?o=-1.2", toggle: "?o=2.-1", remove: "?o=2", priority: "2" });
    // the last sort key removed: the default order, not this same page
    expect(
      /class="sortremove"[^>]*href="([^"]*)"/.exec(
        (await agent.get("/admin/core/post/?o=1").expect(200)).text,
      )?.[1],
    ).toBe("?");
  });

  it("shows 100 posts per page with p=", async () => {
    await h.db.prisma.post.createMany({
      data: Array.from({ length: 105 }, (_, i) => ({
        title: `P${String(i).padStart(3, "0")}`,
        content: "x",
      })),
    });
    const first = await agent.get("/admin/core/post/?o=1").expect(200);
    expect(rowTitles(first.text)).toHaveLength(100);
    expect(textOf(first.text)).toContain("105 posts");
    expect(first.text).toContain('href="?o=1&amp;p=2"');
    const second = await agent.get("/admin/core/post/?o=1&p=2").expect(200);
    expect(rowTitles(second.text)).toEqual(["P100", "P101", "P102", "P103", "P104"]);
    // as Django's ChangeList: past the end, a redirect to ?e=1 (page 1); a malformed p=, page 1
    await agent.get("/admin/core/post/?p=3").expect(302).expect("Location", "/admin/core/post/?e=1");
    expect(rowTitles((await agent.get("/admin/core/post/?o=1&e=1").expect(200)).text)[0]).toBe("P000");
    expect(rowTitles((await agent.get("/admin/core/post/?o=1&p=x").expect(200)).text)[0]).toBe("P000");
    // more digits than Python's int() reads (4,300) is a ValueError too, so page 1
    const tooLong = "9".repeat(4301);
    expect(rowTitles((await agent.get(`/admin/core/post/?o=1&p=${tooLong}`).expect(200)).text)[0]).toBe(
      "P000",
    );
    // p= as Python's int() reads it: " 2", "+2", "２" are page 2
    for (const p of ["+2", "%2B2", "%EF%BC%92", "0_2"]) {
      expect(rowTitles((await agent.get(`/admin/core/post/?o=1&p=${p}`).expect(200)).text)[0], p).toBe(
        "P100",
      );
    }
  });

  it("redirects a page number that is no page (0, negative, past the end) to ?e=1, as Django's ChangeList", async () => {
    await h.db.prisma.post.createMany({
      data: Array.from({ length: 101 }, (_, i) => ({ title: `N${i}`, content: "x" })),
    });
    for (const p of ["0", "-1", "3"]) {
      await agent.get(`/admin/core/post/?p=${p}`).expect(302).expect("Location", "/admin/core/post/?e=1");
    }
  });

  it("searches a quoted phrase as one term (Django's smart_split), every term in title or content", async () => {
    await addPosts(["I am 100% sure", "100 percent, sure", "Sure of it"]);
    const phrase = await agent.get(`/admin/core/post/?q=${encodeURIComponent('"100% sure"')}`).expect(200);
    expect(rowTitles(phrase.text)).toEqual(["I am 100% sure"]);
    // Unquoted, the words are separate terms, each found in the title or the content ("about …").
    const words = await agent.get(`/admin/core/post/?q=${encodeURIComponent("sure about")}`).expect(200);
    expect(rowTitles(words.text)).toEqual(["Sure of it", "100 percent, sure", "I am 100% sure"]);
    const mixed = await agent.get(`/admin/core/post/?q=${encodeURIComponent("'of it' SURE")}`).expect(200);
    expect(rowTitles(mixed.text)).toEqual(["Sure of it"]);
  });

  it('offers "Show all" (all=) for 101 to 200 posts, as Django\'s list_max_show_all, keeping it in the links', async () => {
    const make = (from: number, n: number) =>
      h.db.prisma.post.createMany({
        data: Array.from({ length: n }, (_, i) => ({
          title: `S${String(from + i).padStart(3, "0")}`,
          content: "x",
        })),
      });
    await make(0, 100);
    // one page: nothing to show all of
    expect((await agent.get("/admin/core/post/").expect(200)).text).not.toContain("Show all");
    await make(100, 50);
    const paged = await agent.get("/admin/core/post/?o=1").expect(200);
    expect(rowTitles(paged.text)).toHaveLength(100);
    expect(paged.text).toContain('<a href="?o=1&amp;all=" class="showall">Show all</a>');
    const all = await agent.get("/admin/core/post/?o=1&all=").expect(200);
    expect(rowTitles(all.text)).toHaveLength(150);
    expect(rowTitles(all.text).at(-1)).toBe("S149");
    expect(all.text).not.toContain("Show all");
    expect(all.text).not.toContain('class="pagination"');
    expect(all.text).toContain('href="?o=-1&amp;all="'); // sorting keeps it
    expect(all.text).toContain('<input type="hidden" name="all" value="">'); // so does a search
    const found = await agent.get("/admin/core/post/?q=S14&all=").expect(200);
    expect(rowTitles(found.text)).toHaveLength(10);
    // past 200 there is no "Show all", and all= pages as usual
    await make(150, 51);
    expect((await agent.get("/admin/core/post/").expect(200)).text).not.toContain("Show all");
    const tooMany = await agent.get("/admin/core/post/?o=1&all=&p=3").expect(200);
    expect(rowTitles(tooMany.text)).toEqual(["S200"]);
  });

  it("ignores p= on a single page, as Django's ChangeList", async () => {
    await addPosts(["only"]);
    expect(rowTitles((await agent.get("/admin/core/post/?p=7").expect(200)).text)).toEqual(["only"]);
  });

  it("escapes titles", async () => {
    await addPosts(["<script>alert(1)</script>"]);
    const res = await agent.get("/admin/core/post/").expect(200);
    expect(res.text).not.toContain("<script>alert(1)");
    expect(res.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});

describe("bulk delete", () => {
  async function three() {
    const titles = ["Keep", "Drop 1", "Drop 2"];
    const posts = [];
    for (const title of titles) posts.push(await h.db.prisma.post.create({ data: { title, content: "x" } }));
    return posts;
  }

  it("offers 'Delete selected posts' with a Go button", async () => {
    await three();
    const res = await agent.get("/admin/core/post/").expect(200);
    expect(res.text).toContain('<option value="delete_selected">Delete selected posts</option>');
    expect(res.text).toMatch(
      /<button type="submit" class="button" title="Run the selected action" name="index" value="0">Go<\/button>/,
    );
  });

  it("warns when nothing is selected, or no action is chosen", async () => {
    const [keep] = await three();
    const res = await post("/admin/core/post/?q=x", { action: "delete_selected", index: "0" }).expect(302);
    expect(res.headers.location).toBe("/admin/core/post/?q=x");
    expect(await messagesAt("/admin/core/post/")).toEqual([
      "warning: Items must be selected in order to perform actions on them. No items have been changed.",
    ]);
    await post("/admin/core/post/", { action: "", _selected_action: String(keep!.id) }).expect(302);
    expect(await messagesAt("/admin/core/post/")).toEqual(["warning: No action selected."]);
    expect(await countPosts()).toBe(3);
  });

  it("asks for confirmation, and deletes only with post=yes", async () => {
    const [, a, b] = await three();
    const selected = [String(a!.id), String(b!.id)];
    const confirm = await post("/admin/core/post/", {
      action: "delete_selected",
      _selected_action: selected,
    }).expect(200);
    expect(confirm.text).toContain("<h1>Delete multiple objects</h1>");
    expect(confirm.text).toContain("Are you sure you want to delete the selected posts?");
    expect(confirm.text).toContain("Drop 1");
    expect(confirm.text).toContain('<input type="hidden" name="post" value="yes">');
    expect(await countPosts()).toBe(3);
    const res = await post("/admin/core/post/", {
      action: "delete_selected",
      _selected_action: selected,
      post: "yes",
    }).expect(302);
    expect(res.headers.location).toBe("/admin/core/post/");
    expect(await messagesAt("/admin/core/post/")).toEqual(["success: Successfully deleted 2 posts."]);
    expect((await h.db.prisma.post.findMany()).map((p) => p.title)).toEqual(["Keep"]);
  });

  it("confirms with any value of post, as Django's delete_selected; an empty one asks again", async () => {
    const [, a, b] = await three();
    const selection = { action: "delete_selected", _selected_action: [String(a!.id), String(b!.id)] };
    const again = await post("/admin/core/post/", { ...selection, post: "" }).expect(200);
    expect(again.text).toContain("<h1>Delete multiple objects</h1>");
    expect(await countPosts()).toBe(3);
    await post("/admin/core/post/", { ...selection, post: "on" }).expect(302);
    expect((await h.db.prisma.post.findMany()).map((p) => p.title)).toEqual(["Keep"]);
  });

  it("goes back to the last page when the deletion emptied the page it was on", async () => {
    await h.db.prisma.post.createMany({
      data: Array.from({ length: 101 }, (_, i) => ({ title: `P${i}`, content: "x" })),
    });
    /** Deletes the first `count` posts listed at `url`, confirmed; returns where it went back to. */
    const deleteFrom = async (url: string, count: number): Promise<string> => {
      const page = await agent.get(url).expect(200);
      const ids = [...page.text.matchAll(/name="_selected_action" value="(\d+)"/g)].map((m) => m[1]!);
      expect(ids.length).toBeGreaterThanOrEqual(count);
      const res = await post(url, {
        action: "delete_selected",
        _selected_action: ids.slice(0, count),
        post: "yes",
      }).expect(302);
      expect(await messagesAt(res.headers.location!)).toEqual(["success: Successfully deleted 1 post."]);
      return res.headers.location!;
    };
    expect(
      (await agent.get("/admin/core/post/?o=1&p=2").expect(200)).text.match(/name="_selected_action"/g),
    ).toHaveLength(1);
    expect(await deleteFrom("/admin/core/post/?o=1&p=2", 1)).toBe("/admin/core/post/?o=1&p=1");
    // A page the deletion left standing is where it goes back to, as before.
    expect(await deleteFrom("/admin/core/post/?p=1", 1)).toBe("/admin/core/post/?p=1");
  });

  it("two concurrent deletes of the same posts: one deletes and logs them, the other says nothing (as Django)", async () => {
    const [, a, b] = await three();
    const other = await logIn(h.app, (await createUser(h)).username);
    const selection = {
      action: "delete_selected",
      _selected_action: [String(a!.id), String(b!.id)],
      post: "yes",
    };
    // Both requests have read the posts and wait for the row when it is released.
    const { released } = await lockPost(a!.id, 1500);
    const [mine, theirs] = await Promise.all([
      post("/admin/core/post/", selection),
      other.agent
        .post("/admin/core/post/")
        .type("form")
        .send({ _csrf: other.csrf, ...selection }),
    ]);
    await released;
    expect([mine.status, theirs.status]).toEqual([302, 302]);
    const said = [
      ...(await messagesAt("/admin/core/post/")),
      ...(await messagesAt("/admin/core/post/", other.agent)),
    ];
    expect(said).toEqual(["success: Successfully deleted 2 posts."]);
    expect(await h.db.prisma.adminLog.count({ where: { actionFlag: 3 } })).toBe(2);
    expect(await countPosts()).toBe(1);
  });

  it("acts on every post the search matches, on all pages, with select_across=1 (Django's 'Select all N posts')", async () => {
    await h.db.prisma.post.createMany({
      data: [
        ...Array.from({ length: 102 }, (_, i) => ({ title: `Drop ${i}`, content: "x" })),
        { title: "Keep", content: "x" },
      ],
    });
    const page = await agent.get("/admin/core/post/?q=drop").expect(200);
    expect(page.text).toContain('<input type="hidden" name="select_across" value="0" class="select-across">');
    expect(textOf(page.text)).toContain("Select all 102 posts");
    const onPage = [...page.text.matchAll(/name="_selected_action" value="(\d+)"/g)].map((m) => m[1]!);
    expect(onPage).toHaveLength(100);
    const selection = { action: "delete_selected", index: "0", select_across: "1", _selected_action: onPage };
    const confirm = await post("/admin/core/post/?q=drop", selection).expect(200);
    expect(textOf(confirm.text)).toContain("Summary Posts: 102");
    const ids = [...confirm.text.matchAll(/type="hidden" name="_selected_action" value="(\d+)"/g)].map(
      (m) => m[1],
    );
    expect(ids).toHaveLength(102);
    // "0", as the form sends it before the link is clicked, is the page's ticked posts only
    expect(
      textOf((await post("/admin/core/post/?q=drop", { ...selection, select_across: "0" }).expect(200)).text),
    ).toContain("Summary Posts: 100");
    await post("/admin/core/post/?q=drop", { ...selection, post: "yes" }).expect(302);
    expect(await messagesAt("/admin/core/post/")).toEqual(["success: Successfully deleted 102 posts."]);
    expect((await h.db.prisma.post.findMany()).map((p) => p.title)).toEqual(["Keep"]);
  });

  it("acts only on ticked posts the changelist's search still matches, as Django's response_action", async () => {
    // "Keep" ticked on a search it no longer matches (edited meanwhile, or a tampered form)
    const [keep, a] = await three();
    const selection = { action: "delete_selected", _selected_action: [String(keep!.id), String(a!.id)] };
    const confirm = await post("/admin/core/post/?q=drop", selection).expect(200);
    expect(textOf(confirm.text)).toContain("Summary Posts: 1");
    expect(confirm.text).not.toContain(`name="_selected_action" value="${keep!.id}"`);
    await post("/admin/core/post/?q=drop", { ...selection, post: "yes" }).expect(302);
    expect(await messagesAt("/admin/core/post/")).toEqual(["success: Successfully deleted 1 post."]);
    expect((await h.db.prisma.post.findMany({ orderBy: { id: "asc" } })).map((p) => p.title)).toEqual([
      "Keep",
      "Drop 2",
    ]);
  });

  it("says 'post' for one, and refuses tampered selections with 400", async () => {
    const [keep] = await three();
    await post("/admin/core/post/", {
      action: "delete_selected",
      _selected_action: String(keep!.id),
      post: "yes",
    });
    expect(await messagesAt("/admin/core/post/")).toEqual(["success: Successfully deleted 1 post."]);
    await post("/admin/core/post/", {
      action: "delete_selected",
      _selected_action: ["1", "1 OR 1=1"],
    }).expect(400);
    expect(await countPosts()).toBe(2);
  });
});

describe("breadcrumbs", () => {
  const words = Array.from({ length: 20 }, (_, i) => `w${i + 1}`);
  const crumbsOf = async (id: number, page: string) => {
    const res = await agent.get(`/admin/core/post/${id}/${page}/`).expect(200);
    return /<nav class="breadcrumbs"[^>]*>([\s\S]*?)<\/nav>/.exec(res.text)![1]!;
  };

  it("shorten a long title to its first 18 words, as Django's truncatewords:18", async () => {
    const long = await h.db.prisma.post.create({ data: { title: words.join("  "), content: "x" } });
    const short = words.slice(0, 18).join(" ");
    for (const page of ["change", "delete", "history"]) {
      const crumbs = await crumbsOf(long.id, page);
      expect(textOf(crumbs), page).toContain(`› ${short} …`);
      expect(crumbs, page).not.toContain("w19");
    }
  });

  it("count words between Python's whitespace, as truncatewords' str.split()", async () => {
    // NEL and the information separators are whitespace to Python (not to JavaScript's \s); a byte
    // order mark is not (it is to \s)
    const nel = await h.db.prisma.post.create({ data: { title: words.join("\u0085\u001c"), content: "x" } });
    const bom = await h.db.prisma.post.create({ data: { title: words.join("\ufeff"), content: "x" } });
    expect(await crumbsOf(nel.id, "change")).toContain(`› ${words.slice(0, 18).join(" ")} …`);
    expect(await crumbsOf(bom.id, "change")).toContain(`› ${words.join("\ufeff")}`);
  });
});

describe("history and recent actions (Django's LogEntry)", () => {
  it("records add, change and delete, and shows them as Django does", async () => {
    const none = await agent.get("/admin/").expect(200);
    expect(textOf(none.text)).toContain("Recent actions My actions None available");

    await post("/admin/core/post/add/", { title: "Logged", content: "one" }).expect(302);
    const saved = await h.db.prisma.post.findFirstOrThrow();
    const change = async (fields: Record<string, string>) => {
      const form = await agent.get(`/admin/core/post/${saved.id}/change/`).expect(200);
      expect(form.text).toContain(
        `href="/admin/core/post/${saved.id}/history/" class="historylink">History</a>`,
      );
      await post(`/admin/core/post/${saved.id}/change/`, { ...fields, _version: version(form.text) }).expect(
        302,
      );
    };
    await change({ title: "Logged", content: "two" });
    await change({ title: "Renamed", content: "three" });
    await change({ title: "Renamed", content: "three" });

    const history = await agent.get(`/admin/core/post/${saved.id}/history/`).expect(200);
    expect(history.text).toContain("<h1>Change history: Renamed</h1>");
    const actions = [...history.text.matchAll(/<td>([^<]*)<\/td>\s*<\/tr>/g)].map((m) => m[1]);
    expect(actions).toEqual([
      "Added.",
      "Changed Content.",
      "Changed Title and Content.",
      "No fields changed.",
    ]);

    await post(`/admin/core/post/${saved.id}/delete/`, { post: "yes" }).expect(302);
    const index = await agent.get("/admin/").expect(200);
    const recent = /<ul class="actionlist">([\s\S]*?)<\/ul>/.exec(index.text)![1]!;
    expect(textOf(recent).trim()).toMatch(/^Deleted: Renamed Post Changed: Renamed Post/);
    // A deleted post is named without a link; the others link to their change page.
    const [deleted, changed] = recent.split("</li>");
    expect(deleted).toContain('class="deletelink"');
    expect(deleted).not.toContain("<a ");
    expect(changed).toContain(`<a href="/admin/core/post/${saved.id}/change/">Renamed</a>`);
  });

  it("shows dates in Django's DATETIME_FORMAT on the history page and the changelist", async () => {
    await post("/admin/core/post/add/", { title: "Dated", content: "x" }).expect(302);
    const saved = await h.db.prisma.post.findFirstOrThrow();
    const when = new Date("2026-11-27T14:05:00Z");
    await h.sql("UPDATE core_post SET created_at = $1", [when]);
    await h.sql("UPDATE django_admin_log SET action_time = $1", [when]);
    const history = await agent.get(`/admin/core/post/${saved.id}/history/`).expect(200);
    expect(history.text).toContain('<th scope="row">Nov. 27, 2026, 2:05 p.m.</th>');
    const list = await agent.get("/admin/core/post/").expect(200);
    expect(list.text).toContain('<td class="field-created">Nov. 27, 2026, 2:05 p.m.</td>');
  });

  it("pages the history 100 entries at a time, oldest first, with Django's paginator and count", async () => {
    await post("/admin/core/post/add/", { title: "Busy", content: "x" }).expect(302);
    const saved = await h.db.prisma.post.findFirstOrThrow();
    // 250 entries in all, the n-th made n minutes after the first
    await h.sql(
      `INSERT INTO django_admin_log (action_time, user_id, object_id, object_repr, action_flag, change_message)
       SELECT action_time + n * interval '1 minute', user_id, object_id, object_repr, 2, 'Edit ' || n
       FROM django_admin_log, generate_series(1, 249) AS n`,
    );
    const rowsOf = (html: string) => [...html.matchAll(/<td>([^<]*)<\/td>\s*<\/tr>/g)].map((m) => m[1]);
    const history = (query: string) => agent.get(`/admin/core/post/${saved.id}/history/${query}`).expect(200);

    const first = await history("");
    expect(rowsOf(first.text)).toHaveLength(100);
    expect(rowsOf(first.text).slice(0, 2)).toEqual(["Added.", "Edit 1"]);
    expect(textOf(first.text)).toContain("250 entries");
    expect(first.text).toContain('<span class="this-page" aria-current="page">1</span>');
    expect(first.text).toContain('href="?p=3"');

    expect(rowsOf((await history("?p=2")).text).slice(0, 1)).toEqual(["Edit 100"]);
    // the changelist's state, which the breadcrumbs lead back to, stays in the page links
    const filtered = await history("?_changelist_filters=q%3Dbusy");
    expect(filtered.text).toContain('href="?_changelist_filters=q%3Dbusy&amp;p=2"');
    const last = rowsOf((await history("?p=3")).text);
    expect(last).toHaveLength(50);
    expect(last.at(-1)).toBe("Edit 249");
    // Paginator.get_page: not a number is page 1; past either end is the last page
    expect(rowsOf((await history("?p=x")).text)[0]).toBe("Added.");
    expect(rowsOf((await history("?p=99")).text)[0]).toBe("Edit 200");
    expect(rowsOf((await history("?p=0")).text)[0]).toBe("Edit 200");
    // more digits than int() reads (4,300): PageNotAnInteger, page 1; fewer: past the end
    expect(rowsOf((await history(`?p=${"9".repeat(4301)}`)).text)[0]).toBe("Added.");
    expect(rowsOf((await history(`?p=${"9".repeat(4300)}`)).text)[0]).toBe("Edit 200");

    await h.sql("DELETE FROM django_admin_log WHERE change_message LIKE 'Edit %'");
    const one = await history("");
    expect(textOf(one.text)).toContain("1 entry");
    expect(one.text).not.toContain('class="pagination"');
  });

  it("logs each post of a bulk delete", async () => {
    const a = await h.db.prisma.post.create({ data: { title: "A", content: "x" } });
    const b = await h.db.prisma.post.create({ data: { title: "B", content: "x" } });
    await post("/admin/core/post/", {
      action: "delete_selected",
      _selected_action: [String(a.id), String(b.id)],
      post: "yes",
    }).expect(302);
    const rows = await h.sql<{ object_repr: string; action_flag: number }>(
      "SELECT object_repr, action_flag FROM django_admin_log ORDER BY object_repr",
    );
    expect(rows).toEqual([
      { object_repr: "A", action_flag: 3 },
      { object_repr: "B", action_flag: 3 },
    ]);
  });

  it("has a history page for posts made outside the admin, and Django's redirect for missing ones", async () => {
    const outside = await h.db.prisma.post.create({ data: { title: "Seeded", content: "x" } });
    const page = await agent.get(`/admin/core/post/${outside.id}/history/`).expect(200);
    expect(page.text).toContain(
      "This object doesn’t have a change history. It probably wasn’t added via this admin site.",
    );
    await agent.get("/admin/core/post/999999/history/").expect(302).expect("Location", "/admin/");
  });
});

// A save that waits for rows another transaction holds, as an admin's edit while a long batch job
// locks the post. It waits, as Django does; past Prisma's interactive-transaction timeout (5 s),
// Prisma rolls it back, and the page must say so, keep the text, and not blame an outage.

/** Prisma's default interactive-transaction timeout, which the app keeps. */
const PRISMA_TIMEOUT_MS = 5000;
const TOOK_TOO_LONG = "took too long";

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
  return { saved, opened: version(form.text) };
}

const save = (id: number, opened: string, title: string) =>
  post(`/admin/core/post/${id}/change/`, { title, content: "Edited body", _version: opened, _save: "Save" });

describe("a save waiting for a locked post", () => {
  it("waits for a lock shorter than the timeout, then saves", async () => {
    const { saved, opened } = await openForm("Short wait");
    const { released } = await lockPost(saved.id, 1500);
    const started = Date.now();
    const res = await save(saved.id, opened, "Saved after the wait");
    expect(res.status).toBe(302);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    await released;
    expect((await h.db.prisma.post.findUnique({ where: { id: saved.id } }))!.title).toBe(
      "Saved after the wait",
    );
  });

  it("past the timeout: 503, NOT saved, the text kept, no outage blamed; saving again works", async () => {
    const { saved, opened } = await openForm("Original");
    const { released } = await lockPost(saved.id, PRISMA_TIMEOUT_MS + 1500);
    const res = await save(saved.id, opened, "Edited <title>");
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
    const again = await save(saved.id, version(res.text), "Edited <title>");
    expect(again.status).toBe(302);
    expect((await h.db.prisma.post.findUnique({ where: { id: saved.id } }))!.title).toBe("Edited <title>");
  });

  it("a delete past the timeout: 503 saying nothing changed, with the request offered again", async () => {
    const saved = await h.db.prisma.post.create({ data: { title: "Kept", content: "Body" } });
    const { released } = await lockPost(saved.id, PRISMA_TIMEOUT_MS + 1500);
    const res = await post(`/admin/core/post/${saved.id}/delete/`, { post: "yes" });
    await released;
    expect(res.status).toBe(503);
    const text = textOf(res.text);
    expect(text).toContain(`The change ${TOOK_TOO_LONG}`);
    expect(text).toContain("nothing was saved or changed");
    expect(res.text).toContain(`action="/admin/core/post/${saved.id}/delete/"`);
    expect(await h.db.prisma.post.count({ where: { id: saved.id } })).toBe(1);
  });
});
