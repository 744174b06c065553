// The web app's defences that admin-auth.test.ts does not cover: who may reach every admin route
// (read from the app's router, so a route added later is covered too), posts carrying markup
// rendered inert on every page that shows them, and the security headers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import request from "supertest";
import type { Post } from "../../app/generated/prisma/client.ts";
import { listRoutes } from "../support/express-routes.ts";
import { createHarness, createUser, csrfFrom, logIn, type Agent, type Harness } from "./support.ts";

let h: Harness;
let superuser: { agent: Agent; csrf: string };
let staff: { agent: Agent; csrf: string };

beforeAll(async () => {
  h = await createHarness();
  superuser = await logIn(h.app, (await createUser(h)).username);
  staff = await logIn(h.app, (await createUser(h, { isSuperuser: false })).username);
});
afterAll(async () => {
  await h?.close();
});

const createPost = (title: string, content = "text"): Promise<Post> =>
  h.db.prisma.post.create({ data: { title, content } });

describe("authorization of every admin route", () => {
  /** Logging in, open to anybody, and out, whose guard sends visitors to the index (http-methods.test.ts). */
  const PUBLIC = new Set(["/admin/login/", "/admin/logout/"]);
  /** Routes for any staff member, as Django's index and password change (and our pooler page). */
  const STAFF = new Set([
    "/admin/",
    "/admin/password_change/",
    "/admin/password_change/done/",
    "/admin/pooler/",
    "/admin/pooler/data.json",
  ]);

  /** Django's app_index answers 404 to a user who may see none of the app's models. */
  const HIDDEN = new Set(["/admin/core/"]);

  /** Each admin route as method and URL, `:id` being a post that exists. */
  function adminRequests(id: number): { method: "get" | "post"; path: string; url: string }[] {
    // Every route passes OPTIONS on, to be answered after the guard (http-methods.test.ts).
    const routes = listRoutes(h.app).filter((r) => r.path.startsWith("/admin/") && r.method !== "options");
    return routes.flatMap(({ method, path }) => {
      const url = path.replace(":id", String(id));
      // route.all() answers both; any other method would need a rule of its own here.
      const methods = (method === "all" ? ["get", "post"] : [method]) as ("get" | "post")[];
      expect(["get", "post"], `${method} ${path}: a method this test does not know`).toEqual(
        expect.arrayContaining(methods),
      );
      return methods.map((m) => ({ method: m, path, url }));
    });
  }

  it("finds the routes in the app's router", async () => {
    const paths = adminRequests(1).map((r) => `${r.method} ${r.path}`);
    for (const known of [
      "get /admin/",
      "post /admin/login/",
      "get /admin/core/post/",
      "post /admin/core/post/",
      "post /admin/core/post/add/",
      "post /admin/core/post/:id/change/",
      "post /admin/core/post/:id/delete/",
      "get /admin/core/post/:id/history/",
      "get /admin/pooler/data.json",
    ]) {
      expect(paths).toContain(known);
    }
  });

  it("sends anonymous visitors to the login page, and refuses their POSTs even with a valid CSRF token", async () => {
    const post = await createPost("guarded");
    const anonymous = request.agent(h.app);
    // A csrftoken cookie of its own, and its token: what a visitor who never logged in has.
    const token = csrfFrom((await anonymous.get("/admin/login/").expect(200)).text);
    for (const { method, path, url } of adminRequests(post.id)) {
      if (PUBLIC.has(path)) continue;
      const what = `${method} ${url}`;
      if (method === "get") {
        const res = await request(h.app).get(url);
        expect(res.status, what).toBe(302);
        expect(res.headers.location, what).toBe(`/admin/login/?next=${url}`);
      } else {
        await request(h.app).post(url).type("form").send({ title: "x", content: "x" }).expect(403);
        const res = await anonymous
          .post(url)
          .type("form")
          .send({
            _csrf: token,
            title: "x",
            content: "x",
            post: "yes",
            action: "delete_selected",
            _selected_action: String(post.id),
          });
        expect(res.status, what).toBe(302);
        expect(res.headers.location, what).toMatch(/^\/admin\/login\/\?next=/);
      }
    }
    expect(await h.db.prisma.post.findUnique({ where: { id: post.id } })).toMatchObject({ title: "guarded" });
  });

  it("refuses staff members who are not superusers the posts (403), as a fresh Django site", async () => {
    const post = await createPost("not yours");
    for (const { method, path, url } of adminRequests(post.id)) {
      if (PUBLIC.has(path)) continue;
      const what = `${method} ${url}`;
      const res =
        method === "get"
          ? await staff.agent.get(url)
          : await staff.agent.post(url).type("form").send({ _csrf: staff.csrf, title: "x", content: "x" });
      if (STAFF.has(path)) {
        expect([200, 400], what).toContain(res.status);
      } else if (HIDDEN.has(path)) {
        expect(res.status, what).toBe(404);
      } else {
        expect(res.status, what).toBe(403);
      }
    }
    expect(await h.db.prisma.post.findUnique({ where: { id: post.id } })).toMatchObject({
      title: "not yours",
    });
  });

  it("ends the access of a superuser deactivated while logged in", async () => {
    const user = await createUser(h);
    const { agent } = await logIn(h.app, user.username);
    await h.db.prisma.user.update({ where: { id: user.id }, data: { isActive: false } });
    for (const { method, path, url } of adminRequests(1)) {
      if (PUBLIC.has(path) || method !== "get") continue;
      const res = await agent.get(url);
      expect(res.status, url).toBe(302);
      expect(res.headers.location, url).toBe(`/admin/login/?next=${url}`);
    }
    // Nobody, as Django's ModelBackend.get_user makes an inactive user: the login page does not
    // tell them they are still authenticated.
    const login = await agent.get("/admin/login/").expect(200);
    expect(login.text).not.toContain("You are authenticated as");
    // The session is kept, as Django keeps it: reactivated, the user is logged in again.
    await h.db.prisma.user.update({ where: { id: user.id }, data: { isActive: true } });
    await agent.get("/admin/").expect(200);
  });
});

describe("markup in posts is shown, never run", () => {
  const PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'];

  /** Only the page's own scripts, no event handler attribute, and the payload as text. */
  function expectInert(html: string, payload: string, page: string): void {
    expect(html, page).not.toContain(payload);
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag, page).toMatch(/ src="\/static\//);
    for (const tag of html.match(/<[a-z][^>]*>/gi) ?? []) {
      // Quoted attribute values are text: only what is left can be an attribute.
      expect(tag.replace(/"[^"]*"/g, '""'), page).not.toMatch(/\son\w+\s*=/i);
    }
    expect(html, page).toContain(
      payload.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;"),
    );
  }

  it.each(PAYLOADS)("%s as a title and as content", async (payload) => {
    const { agent, csrf } = superuser;
    const added = await agent
      .post("/admin/core/post/add/")
      .type("form")
      .send({ _csrf: csrf, title: payload, content: payload, _continue: "1" })
      .expect(302);
    const id = Number(/\/(\d+)\/change\/$/.exec(added.headers.location!)![1]);
    // The success message ("The post “…” was added successfully.") is on the page the redirect leads to.
    const pages: Record<string, string> = {
      "change form with the added message": (await agent.get(added.headers.location!).expect(200)).text,
      "post list": (await request(h.app).get("/").expect(200)).text,
      "post page": (await request(h.app).get(`/posts/${id}`).expect(200)).text,
      changelist: (await agent.get("/admin/core/post/").expect(200)).text,
      "changelist search": (await agent.get(`/admin/core/post/?q=${encodeURIComponent(payload)}`).expect(200))
        .text,
      "delete confirmation": (await agent.get(`/admin/core/post/${id}/delete/`).expect(200)).text,
      history: (await agent.get(`/admin/core/post/${id}/history/`).expect(200)).text,
      "bulk delete confirmation": (
        await agent
          .post("/admin/core/post/")
          .type("form")
          .send({ _csrf: csrf, action: "delete_selected", _selected_action: String(id) })
          .expect(200)
      ).text,
      "form with errors": (
        await agent
          .post("/admin/core/post/add/")
          .type("form")
          .send({ _csrf: csrf, title: payload, content: "" })
          .expect(200)
      ).text,
      "login page's next": (
        await request(h.app)
          .get(`/admin/login/?next=/${encodeURIComponent(payload)}`)
          .expect(200)
      ).text,
    };
    const changed = await agent
      .post(`/admin/core/post/${id}/change/`)
      .type("form")
      .send({
        _csrf: csrf,
        title: payload,
        content: `${payload} again`,
        _version: (await h.db.prisma.post.findUniqueOrThrow({ where: { id } })).updatedAt.toISOString(),
      })
      .expect(302);
    pages["changed message"] = (await agent.get(changed.headers.location!).expect(200)).text;
    const deleted = await agent
      .post(`/admin/core/post/${id}/delete/`)
      .type("form")
      .send({ _csrf: csrf })
      .expect(302);
    pages["deleted message"] = (await agent.get(deleted.headers.location!).expect(200)).text;
    for (const [page, html] of Object.entries(pages)) expectInert(html, payload, page);
    expect(pages["changed message"]).toContain("was changed successfully");
    expect(pages["deleted message"]).toContain("was deleted successfully");
  });
});

describe("security headers", () => {
  it("are sent on public and admin pages, errors included", async () => {
    const post = await createPost("headers");
    const responses = {
      "/": await request(h.app).get("/").expect(200),
      "/posts/:id": await request(h.app).get(`/posts/${post.id}`).expect(200),
      "a 404": await request(h.app).get("/no/such/page").expect(404),
      "/admin/login/": await request(h.app).get("/admin/login/").expect(200),
      "/admin/": await superuser.agent.get("/admin/").expect(200),
      "/admin/core/post/": await superuser.agent.get("/admin/core/post/").expect(200),
      "/admin/pooler/": await superuser.agent.get("/admin/pooler/").expect(200),
    };
    for (const [page, res] of Object.entries(responses)) {
      const csp = Object.fromEntries(
        String(res.headers["content-security-policy"])
          .split(";")
          .map((d) => d.trim().split(/\s+/))
          .map(([name, ...values]) => [name, values]),
      ) as Record<string, string[]>;
      const scripts = csp["script-src"] ?? csp["default-src"];
      expect(scripts, page).toEqual(["'self'"]); // no 'unsafe-inline', no 'unsafe-eval'
      expect(csp["script-src-attr"], page).toEqual(["'none'"]); // no onclick= …
      expect(csp["object-src"], page).toEqual(["'none'"]);
      expect(csp["frame-ancestors"], page).toEqual(["'none'"]);
      expect(csp["default-src"], page).toEqual(["'self'"]);
      expect(res.headers["x-frame-options"], page).toBe("DENY");
      expect(res.headers["x-content-type-options"], page).toBe("nosniff");
      expect(res.headers["referrer-policy"], page).toBe("same-origin");
      expect(res.headers["cross-origin-opener-policy"], page).toBe("same-origin");
      expect(res.headers["x-powered-by"], page).toBeUndefined();
      // Without TLS, no HSTS (a demo on http://localhost must not be pinned to https).
      expect(res.headers["strict-transport-security"], page).toBeUndefined();
      // The policy forbids inline scripts, so the pages must have none to keep working.
      for (const tag of res.text.match(/<script\b[^>]*>/g) ?? []) expect(tag, page).toMatch(/ src="/);
    }
  });
});
