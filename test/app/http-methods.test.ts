// Methods a URL does not take, as Django 5 answers them: a URL that exists refuses another method
// with 405 and an Allow header (View.http_method_not_allowed), only a URL that does not exist is a
// 404, and CSRF and the login guard still come first.
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
    // Logging in and out are open to anybody, so is what they answer to other methods.
    await anonymous
      .delete("/admin/login/")
      .set("x-csrf-token", token)
      .expect(405)
      .expect("Allow", "GET, POST, HEAD, OPTIONS");
    await anonymous.get("/admin/logout/").expect(405).expect("Allow", "POST, OPTIONS");
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
      const res = await request(h.app).options(url);
      if (!url.startsWith("/admin/") || url === "/admin/login/" || url === "/admin/logout/") continue;
      expect(`${url}: ${res.status} ${res.headers.location}`).toBe(`${url}: 302 /admin/login/?next=${url}`);
    }
    for (const url of ["/admin/login/", "/", `/posts/${postId}`]) {
      const res = await request(h.app).options(url);
      expect(`${url}: ${summary(res)}`).toBe(`${url}: 200 ${routeAllows().get(url)} length=0 ""`);
    }
  });
});
