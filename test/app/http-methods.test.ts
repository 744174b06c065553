// Methods a URL does not take, as Django 5 answers them: a URL that exists refuses another method
// with 405 and an Allow header (View.http_method_not_allowed), only a URL that does not exist is a
// 404, and CSRF and the login guard still come first.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import request from "supertest";
import { listRoutes } from "../support/express-routes.ts";
import { createHarness, createUser, csrfFrom, logIn, type Agent, type Harness } from "./support.ts";

let h: Harness;
let superuser: { agent: Agent; csrf: string };
let postId: number;

beforeAll(async () => {
  h = await createHarness();
  superuser = await logIn(h.app, (await createUser(h)).username);
  postId = (await h.db.prisma.post.create({ data: { title: "t", content: "c" } })).id;
});
afterAll(async () => {
  await h?.close();
});

type Method = "get" | "post" | "put" | "patch" | "delete" | "options";

/** A request as the logged-in superuser, with a valid CSRF token whatever the method. */
const send = (method: Method, url: string) =>
  superuser.agent[method](url).set("x-csrf-token", superuser.csrf);

/** Django's order of methods in Allow (View.http_method_names). */
const DJANGO_ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** Each URL of the app's router (`:id` a post that exists) and the Allow header its routes make. */
function routeAllows(): Map<string, string> {
  const byPath = new Map<string, Set<string>>();
  for (const { method, path } of listRoutes(h.app)) {
    if (method === "all") continue;
    const url = path.replace(":id", String(postId));
    const methods = byPath.get(url) ?? new Set(["OPTIONS"]);
    methods.add(method.toUpperCase());
    if (method === "get") methods.add("HEAD");
    byPath.set(url, methods);
  }
  expect(byPath.size).toBeGreaterThan(10);
  return new Map(
    [...byPath].map(([url, methods]) => [url, DJANGO_ORDER.filter((m) => methods.has(m)).join(", ")]),
  );
}

describe("a method the URL does not take", () => {
  it("is a 405 with Allow, as Django's views answer it", async () => {
    const cases: [Method, string, string][] = [
      // Django 5's LogoutView takes only POST (and OPTIONS)
      ["get", "/admin/logout/", "POST, OPTIONS"],
      ["post", "/admin/password_change/done/", "GET, HEAD, OPTIONS"],
      ["delete", "/admin/password_change/", "GET, POST, HEAD, OPTIONS"],
      ["post", "/admin/", "GET, HEAD, OPTIONS"],
      ["delete", "/admin/core/post/", "GET, POST, HEAD, OPTIONS"],
      ["put", "/admin/core/post/add/", "GET, POST, HEAD, OPTIONS"],
      ["patch", `/admin/core/post/${postId}/change/`, "GET, POST, HEAD, OPTIONS"],
      ["post", `/admin/core/post/${postId}/history/`, "GET, HEAD, OPTIONS"],
      ["post", "/admin/pooler/data.json", "GET, HEAD, OPTIONS"],
      // the tutorial's ListView
      ["post", "/", "GET, HEAD, OPTIONS"],
      ["delete", `/posts/${postId}`, "GET, HEAD, OPTIONS"],
    ];
    const answers = [];
    for (const [method, url] of cases) {
      const res = await send(method, url);
      answers.push([
        method,
        url,
        `${res.status} ${res.headers.allow} ${/Method Not Allowed \(405\)/.test(res.text)}`,
      ]);
    }
    expect(answers).toEqual(cases.map(([method, url, allow]) => [method, url, `405 ${allow} true`]));
    expect(await h.db.prisma.post.count()).toBe(1);
  });

  it("is a 405 on every route of the app's router, naming the methods its routes take", async () => {
    const answers: string[] = [];
    const expected: string[] = [];
    for (const [url, allow] of routeAllows()) {
      for (const method of ["put", "patch", "delete"] as const) {
        const res = await send(method, url);
        answers.push(`${method} ${url}: ${res.status} ${res.headers.allow}`);
        expected.push(`${method} ${url}: 405 ${allow}`);
      }
    }
    expect(answers).toEqual(expected);
  });

  it("answers OPTIONS with the same Allow, as Django's View.options", async () => {
    const res = await send("options", "/admin/logout/").expect(200);
    expect(res.headers.allow).toBe("POST, OPTIONS");
  });

  it("is still a 404 where the URL does not exist", async () => {
    for (const url of [
      "/nope",
      "/admin/nope/",
      `/admin/core/post/${postId}/nope/`,
      "/admin/pooler/nope.json",
    ]) {
      for (const method of ["get", "post", "delete"] as const) {
        const res = await send(method, url);
        expect(res.status, `${method} ${url}`).toBe(404);
        expect(res.headers.allow, `${method} ${url}`).toBeUndefined();
      }
    }
  });

  it("comes after CSRF and the login guard, as Django's csrf_protect and admin_view", async () => {
    await request(h.app).delete("/admin/core/post/").expect(403);
    const anonymous = request.agent(h.app);
    const token = csrfFrom((await anonymous.get("/admin/login/").expect(200)).text);
    await anonymous
      .delete("/admin/core/post/")
      .set("x-csrf-token", token)
      .expect(302)
      .expect("Location", "/admin/login/?next=/admin/core/post/");
    // Logging in is open to anybody, so is what it answers to other methods.
    await anonymous
      .delete("/admin/login/")
      .set("x-csrf-token", token)
      .expect(405)
      .expect("Allow", "GET, POST, HEAD, OPTIONS");
    const staff = await logIn(h.app, (await createUser(h, { isSuperuser: false })).username);
    await staff.agent.delete("/admin/core/post/").set("x-csrf-token", staff.csrf).expect(403);
  });
});

describe("OPTIONS", () => {
  /** What matters of an answer to OPTIONS: Django's View.options sends Allow and an empty body. */
  const summary = (res: request.Response) =>
    `${res.status} ${res.headers.allow} length=${res.headers["content-length"]} ${JSON.stringify(res.text)}`;

  it("is answered on every route as Django's View.options: 200, Allow, an empty body", async () => {
    const answers: string[] = [];
    const expected: string[] = [];
    for (const [url, allow] of routeAllows()) {
      answers.push(`${url}: ${summary(await send("options", url))}`);
      expected.push(`${url}: 200 ${allow} length=0 ""`);
    }
    expect(answers).toEqual(expected);
  });

  it("sends an anonymous visitor to log in first on the admin's pages, as admin_view", async () => {
    for (const url of routeAllows().keys()) {
      if (!url.startsWith("/admin/") || url === "/admin/login/") continue;
      const res = await request(h.app).options(url);
      // the logout URL leads to the index instead (below)
      const to = url === "/admin/logout/" ? "/admin/" : `/admin/login/?next=${url}`;
      expect(`${url}: ${res.status} ${res.headers.location}`).toBe(`${url}: 302 ${to}`);
    }
    for (const url of ["/admin/login/", "/", `/posts/${postId}`]) {
      const res = await request(h.app).options(url);
      expect(`${url}: ${summary(res)}`).toBe(`${url}: 200 ${routeAllows().get(url)} length=0 ""`);
    }
  });
});

describe("the logout URL without an admin login", () => {
  // Django's admin_view runs before LogoutView, and sends a visitor it does not let in to the admin
  // index (not to the login page: there is nothing to come back to after logging in).
  it("sends an anonymous visitor to the index, whatever the method, as Django's admin_view", async () => {
    const anonymous = request.agent(h.app);
    const token = csrfFrom((await anonymous.get("/admin/login/").expect(200)).text);
    await anonymous.get("/admin/logout/").expect(302).expect("Location", "/admin/");
    await anonymous.head("/admin/logout/").expect(302).expect("Location", "/admin/");
    for (const method of ["post", "put", "delete", "options"] as const) {
      const res = await anonymous[method]("/admin/logout/").set("x-csrf-token", token);
      expect(`${method} ${res.status} ${res.headers.location}`).toBe(`${method} 302 /admin/`);
    }
  });

  it("sends a logged-in user who is not staff to the index without logging them out", async () => {
    // Logged in as staff, then no longer staff: what Django's has_permission refuses.
    const user = await createUser(h);
    const { agent, csrf } = await logIn(h.app, user.username);
    await h.db.prisma.user.update({ where: { id: user.id }, data: { isStaff: false } });
    await agent.get("/admin/logout/").expect(302).expect("Location", "/admin/");
    const res = await agent.post("/admin/logout/").type("form").send({ _csrf: csrf });
    expect(`${res.status} ${res.headers.location}`).toBe("302 /admin/");
    // still logged in: staff again, the same session opens the admin
    await h.db.prisma.user.update({ where: { id: user.id }, data: { isStaff: true } });
    await agent.get("/admin/").expect(200);
  });
});

describe("a request target that is not a path", () => {
  it("OPTIONS * (the server as a whole) is a 404, not a 500; an absolute-form URL is its path", async () => {
    const server = h.app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as { port: number };
    try {
      for (const [method, target] of [
        ["OPTIONS", "*"],
        ["GET", "*"],
        ["GET", `http://127.0.0.1:${port}/`],
      ] as const) {
        const status = await new Promise<number>((resolve, reject) => {
          http
            .request({ host: "127.0.0.1", port, method, path: target }, (res) => {
              res.resume();
              resolve(res.statusCode!);
            })
            .on("error", reject)
            .end();
        });
        expect(status, `${method} ${target}`).toBe(target === "*" ? 404 : 200);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
