// The tutorial's public page and the app-wide behaviour: 404/500 pages, headers, static files.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import request from "supertest";
import { createHarness, createUser, logIn, settings, textOf, type Harness } from "./support.ts";
import { POSTS_PER_PAGE } from "../../app/routes/posts.ts";
import { createApp } from "../../app/app.ts";
import { MemoryStore } from "express-session";
import type { PrismaClient } from "../../app/generated/prisma/client.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  await h.sql("TRUNCATE core_post");
});

/** Posts created one after another, so that "newest first" has a defined answer. */
async function addPosts(count: number, prefix = "Post") {
  const posts = [];
  for (let i = 1; i <= count; i++) {
    posts.push(
      await h.db.prisma.post.create({
        data: {
          title: `${prefix} ${i}`,
          content: `Content of ${prefix} ${i}`,
          createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
        },
      }),
    );
  }
  return posts;
}

function titles(html: string): string[] {
  return [...html.matchAll(/<a href="\/posts\/\d+">([^<]*)<\/a>/g)].map((m) => m[1]!);
}

describe("Post List (/)", () => {
  it("shows the empty state when there are no posts", async () => {
    const res = await request(h.app).get("/").expect(200);
    expect(res.text).toContain("<title>Post List</title>");
    expect(res.text).toContain("<h1>Post List</h1>");
    expect(res.text).toContain("No posts yet.");
    expect(res.text).not.toContain("Add post"); // only for staff
    expect(res.headers["set-cookie"]).toBeUndefined(); // readers get no session
  });

  it("offers staff an 'Add post' link in the empty state", async () => {
    const user = await createUser(h);
    const { agent } = await logIn(h.app, user.username);
    const res = await agent.get("/").expect(200);
    expect(res.text).toContain('<a href="/admin/core/post/add/">Add post</a>');
  });

  it("lists titles newest first, linking to each post", async () => {
    const posts = await addPosts(3);
    const res = await request(h.app).get("/").expect(200);
    expect(titles(res.text)).toEqual(["Post 3", "Post 2", "Post 1"]);
    expect(res.text).toContain(`href="/posts/${posts[0]!.id}"`);
    expect(res.text).toContain("Content of Post 3");
  });

  it(`pages by ${POSTS_PER_PAGE} with ?page=N`, async () => {
    await addPosts(25);
    const first = await request(h.app).get("/").expect(200);
    expect(titles(first.text)).toEqual(Array.from({ length: 10 }, (_, i) => `Post ${25 - i}`));
    expect(textOf(first.text)).toContain("Page 1 of 3");
    expect(first.text).toContain('href="?page=2"');
    const third = await request(h.app).get("/?page=3").expect(200);
    expect(titles(third.text)).toEqual(["Post 5", "Post 4", "Post 3", "Post 2", "Post 1"]);
    expect(third.text).toContain('rel="prev" href="?page=2"');
    expect(third.text).not.toContain('rel="next"');
    // ListView's "last", and page numbers as Python's int() reads them
    for (const page of ["last", "%2B3", "+3", "%EF%BC%93"]) {
      expect(titles((await request(h.app).get(`/?page=${page}`).expect(200)).text), page).toEqual(
        titles(third.text),
      );
    }
  });

  it("answers 404 for pages that do not exist or are not numbers", async () => {
    await addPosts(2);
    for (const page of ["2", "0", "-1", "abc", "1.5", "99999999999999999999", "3_", "Last"]) {
      const res = await request(h.app).get(`/?page=${page}`).expect(404);
      expect(res.text).toContain("Not Found");
    }
  });

  it("escapes titles and content: stored text is never HTML", async () => {
    const evil = `<script>alert("x")</script>`;
    const post = await h.db.prisma.post.create({
      data: { title: evil, content: `<img src=x onerror=alert(1)> & ${evil}` },
    });
    for (const path of ["/", `/posts/${post.id}`]) {
      const res = await request(h.app).get(path).expect(200);
      expect(res.text).not.toContain("<script>alert");
      expect(res.text).not.toContain("<img src=x");
      expect(res.text).toContain("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;");
    }
  });
});

describe("post page (/posts/:id)", () => {
  it("shows the title, the date in Django's DATETIME_FORMAT and the whole content", async () => {
    const createdAt = new Date("2026-09-03T00:00:00Z");
    const post = await h.db.prisma.post.create({
      data: { title: "Pooling", content: "Line one\nLine two", createdAt },
    });
    const res = await request(h.app).get(`/posts/${post.id}`).expect(200);
    expect(res.text).toContain("<h1>Pooling</h1>");
    expect(res.text).toContain('<time datetime="2026-09-03T00:00:00.000Z">Sept. 3, 2026, midnight</time>');
    expect(res.text).toContain("Line one\nLine two");
    expect(res.text).toContain('href="/"');
  });

  it("answers 404 for ids that do not exist or are not ids", async () => {
    const post = await h.db.prisma.post.create({ data: { title: "Only ASCII digits", content: "x" } });
    // Django's <int:pk> is [0-9]+: a sign, a space or other digits do not match the URL at all
    for (const id of [
      "999999",
      "0",
      "abc",
      "1e3",
      "-5",
      "2147483648",
      "%00",
      `%2B${post.id}`,
      `%20${post.id}`,
    ]) {
      const res = await request(h.app).get(`/posts/${id}`).expect(404);
      expect(res.text).toContain("Not Found");
    }
  });

  it("reads leading zeros as Django's <int:pk> does: /posts/01 is post 1", async () => {
    const post = await h.db.prisma.post.create({ data: { title: "Zero-padded", content: "x" } });
    const res = await request(h.app).get(`/posts/000${post.id}`).expect(200);
    expect(res.text).toContain("Zero-padded");
  });
});

describe("the rest of the site", () => {
  it("has a 404 page", async () => {
    const res = await request(h.app).get("/no/such/page").expect(404);
    expect(res.text).toContain("<h1>Not Found</h1>");
    expect(res.text).toContain("The requested resource was not found on this server.");
  });

  it("sends security headers; the CSP allows no inline script", async () => {
    const res = await request(h.app).get("/").expect(200);
    const csp = String(res.headers["content-security-policy"]);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toContain("upgrade-insecure-requests");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["referrer-policy"]).toBe("same-origin");
    expect(res.headers["x-powered-by"]).toBeUndefined();
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
  });

  it("serves the stylesheet without touching the session store", async () => {
    const res = await request(h.app).get("/static/site.css").expect(200);
    expect(res.headers["content-type"]).toMatch(/text\/css/);
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("shows a 500 page without the stack in production, with it in development", async () => {
    // The real app over a database that fails every query.
    const broken = new Proxy({} as PrismaClient, {
      get: () => new Proxy({}, { get: () => () => Promise.reject(new Error("secret detail in the stack")) }),
    });
    const appFor = (production: boolean) =>
      createApp({
        config: { ...settings, production },
        prisma: broken,
        sessionStore: new MemoryStore(),
        poolerMonitor: h.poolerMonitor,
      });
    const prod = await request(appFor(true)).get("/").expect(500);
    expect(prod.text).toContain("Server Error (500)");
    expect(prod.text).not.toContain("secret detail");
    const dev = await request(appFor(false)).get("/").expect(500);
    expect(dev.text).toContain("secret detail in the stack");
  });
});
