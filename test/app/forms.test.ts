import { describe, expect, it } from "vitest";
import { parseForm, REQUIRED } from "../../app/forms/fields.ts";
import { parseId } from "../../app/forms/ids.ts";
import { postForm } from "../../app/forms/post.ts";
import { loginForm, passwordChangeForm } from "../../app/forms/auth.ts";
import { actionForm, formatOrdering, parseOrdering } from "../../app/forms/changelist.ts";
import { emailSchema, usernameSchema } from "../../app/forms/superuser.ts";
import { loginUrl } from "../../app/auth/guard.ts";
import { safeNext } from "../../app/auth/next-url.ts";
import { DJANGO_HOST, DJANGO_NEXT } from "./django-next.ts";
import { ConfigError, loadConfig } from "../../app/config.ts";

describe("post form", () => {
  it("accepts a title and content, stripped as Django strips CharFields", () => {
    const result = parseForm(postForm, { title: "  Hello  ", content: " Body \n" });
    expect(result).toMatchObject({ ok: true, data: { title: "Hello", content: "Body" } });
  });

  it("strips what Python's str.strip() strips, no more and no less", () => {
    // U+001C-U+001F and NEL are whitespace to Python (a title of them is blank); a BOM is not.
    const blank = parseForm(postForm, { title: "\u001c\u001d\u001e\u001f\u0085", content: "x\u0085" });
    expect(blank.ok ? blank.data : blank.errors).toEqual({ title: [REQUIRED] });
    const kept = parseForm(postForm, { title: "\ufeffHello\u3000", content: "\u00a0Body\u2029" });
    expect(kept).toMatchObject({ ok: true, data: { title: "\ufeffHello", content: "Body" } });
  });

  it("says 'This field is required.' for a blank or missing field, and keeps the input", () => {
    const result = parseForm(postForm, { title: "   " });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual({ title: [REQUIRED], content: [REQUIRED] });
    expect(result.values).toEqual({ title: "   ", content: "" });
  });

  it("counts characters, not UTF-16 units, against max_length=255", () => {
    expect(parseForm(postForm, { title: "😀".repeat(255), content: "x" }).ok).toBe(true);
    const result = parseForm(postForm, { title: "a".repeat(256), content: "x" });
    expect(result.ok ? [] : result.errors.title).toEqual([
      "Ensure this value has at most 255 characters (it has 256).",
    ]);
  });

  it("refuses NUL characters, which PostgreSQL cannot store", () => {
    const result = parseForm(postForm, { title: "a\0b", content: "x" });
    expect(result.ok ? [] : result.errors.title).toEqual(["Null characters are not allowed."]);
  });

  // A repeated field reaches the forms as its last value (app/query-dict.ts; query-params.test.ts).
  it("refuses values that are not text", () => {
    expect(parseForm(postForm, { title: ["one", "two"], content: "x" }).ok).toBe(false);
    expect(parseForm(postForm, { title: { a: 1 }, content: "x" }).ok).toBe(false);
    expect(parseForm(postForm, undefined).ok).toBe(false);
  });
});

describe("login and password change forms", () => {
  it("does not strip passwords", () => {
    expect(parseForm(loginForm, { username: " admin ", password: " pw " })).toMatchObject({
      data: { username: "admin", password: " pw " },
    });
  });

  it("checks that the new passwords match and pass the validators", () => {
    const form = passwordChangeForm({ username: "alice", email: "" });
    const mismatch = parseForm(form, {
      old_password: "x",
      new_password1: "violet-tugboat-91",
      new_password2: "other",
    });
    expect(mismatch.ok ? {} : mismatch.errors).toEqual({
      new_password2: ["The two password fields didn’t match."],
    });
    const weak = parseForm(form, { old_password: "x", new_password1: "12345678", new_password2: "12345678" });
    expect(weak.ok ? {} : weak.errors.new_password2).toEqual([
      "This password is too common.",
      "This password is entirely numeric.",
    ]);
  });
});

describe("ids, ordering and actions", () => {
  it("reads ids as Django's admin does (Python's int()), positive int4 only", () => {
    expect(parseId("42")).toBe(42);
    for (const [given, id] of [
      ["01", 1],
      ["+1", 1],
      [" 1 ", 1],
      ["１２", 12],
      ["1_0", 10],
      ["2147483647", 2147483647],
    ] as const) {
      expect(parseId(given)).toBe(id);
    }
    for (const bad of ["0", "-1", "1.5", "1e3", "1__0", "abc", "2147483648", "99999999999", "", undefined]) {
      expect(parseId(bad)).toBeUndefined();
    }
  });

  it("parses Django's o= and ignores what it does not know", () => {
    expect(parseOrdering("-2.1")).toEqual([
      { column: 2, descending: true },
      { column: 1, descending: false },
    ]);
    expect(parseOrdering("9.x.1.1")).toEqual([{ column: 1, descending: false }]);
    expect(parseOrdering(["1"])).toEqual([]);
    expect(formatOrdering(parseOrdering("-2.1"))).toBe("-2.1");
  });

  it("reads the action form's selection", () => {
    expect(
      actionForm.parse({ action: "delete_selected", _selected_action: ["3", "1", "3"], post: "yes" }),
    ).toEqual({
      action: "delete_selected",
      _selected_action: [3, 1],
      select_across: false,
      post: true,
    });
    expect(actionForm.parse({})).toEqual({
      action: "",
      _selected_action: [],
      select_across: false,
      post: false,
    });
    expect(actionForm.safeParse({ _selected_action: ["1", "x"] }).success).toBe(false);
    // Django's BooleanField: "false" and "0" (any case) and "" are False, any other text True
    for (const [raw, across] of [
      ["1", true],
      ["on", true],
      ["0", false],
      ["False", false],
      ["", false],
    ] as const) {
      expect(actionForm.parse({ select_across: raw }).select_across, raw).toBe(across);
    }
  });
});

describe("createsuperuser fields", () => {
  it("validates usernames and emails with Django's messages", () => {
    expect(usernameSchema.safeParse("jane.doe+x@site").success).toBe(true);
    expect(usernameSchema.safeParse("").error?.issues[0]?.message).toBe("This field cannot be blank.");
    expect(usernameSchema.safeParse("no spaces").error?.issues[0]?.message).toMatch(
      /^Enter a valid username\./,
    );
    expect(emailSchema.safeParse("").success).toBe(true);
    expect(emailSchema.safeParse("nope").error?.issues[0]?.message).toBe("Enter a valid email address.");
  });
});

describe("login redirects", () => {
  const site = { host: "admin.example:8000", secure: false };

  it("keeps what Django's url_has_allowed_host_and_scheme allows, as given, and nothing else", () => {
    for (const [next, secure, location] of DJANGO_NEXT) {
      expect(safeNext(next, { host: DJANGO_HOST, secure }), JSON.stringify([next, secure])).toBe(
        location === null ? "/admin/" : next,
      );
    }
    for (const bad of [undefined, ["/admin/"]]) expect(safeNext(bad, site)).toBe("/admin/");
  });

  it("keeps an absolute URL on the request's own host, as Django's url_has_allowed_host_and_scheme", () => {
    for (const good of [
      "http://admin.example:8000/admin/core/post/?q=x",
      "https://admin.example:8000/",
      "HTTP://admin.example:8000",
      "http://admin.example:8000?p=2",
    ]) {
      expect(safeNext(good, site)).toBe(good);
    }
    for (const bad of [
      "http://admin.example/", // another port is another site
      "http://admin.example:8000.evil.example/",
      "http://admin.example:8000@evil.example/",
      "http://user@admin.example:8000/",
      "http:///admin.example:8000/",
      "ftp://admin.example:8000/",
      "http://admin.example:8000\\@evil.example/",
    ]) {
      expect(safeNext(bad, site), bad).toBe("/admin/");
    }
    // Over https, only https: http would downgrade the connection (require_https=request.is_secure()).
    expect(safeNext("http://admin.example:8000/", { ...site, secure: true })).toBe("/admin/");
    expect(safeNext("https://admin.example:8000/", { ...site, secure: true })).toBe(
      "https://admin.example:8000/",
    );
    // A Host header that is no plain host name vouches for nothing.
    for (const host of ["evil.example@admin.example", "admin.example/x", "", undefined]) {
      expect(safeNext(`http://${host}/`, { host: host as string, secure: false })).toBe("/admin/");
    }
  });

  it("builds Django's login URL", () => {
    expect(loginUrl("/admin/core/post/?q=a b")).toBe("/admin/login/?next=/admin/core/post/%3Fq%3Da%20b");
  });
});

describe("configuration", () => {
  const base = { DATABASE_URL: "postgresql://u:p@localhost:6432/app" };

  it("has the documented defaults", () => {
    const config = loadConfig(base, () => {});
    expect(config).toMatchObject({
      port: 8000,
      host: "0.0.0.0",
      dbPoolMax: 10,
      dbQueryTimeout: 30,
      scryptN: 2 ** 17,
      behindTls: false,
    });
  });

  it("requires DATABASE_URL, and SESSION_SECRET in production", () => {
    expect(() => loadConfig({}, () => {})).toThrow(/DATABASE_URL: required/);
    expect(() => loadConfig({ DATABASE_URL: "http://x/" }, () => {})).toThrow(
      /DATABASE_URL: must be a postgresql:\/\/ URL/,
    );
    expect(() => loadConfig({ ...base, NODE_ENV: "production" })).toThrow(ConfigError);
    expect(() =>
      loadConfig({ ...base, NODE_ENV: "production", SESSION_SECRET: "x".repeat(40) }),
    ).not.toThrow();
  });

  it("warns when it falls back to the development secret", () => {
    const warnings: string[] = [];
    loadConfig(base, (w) => warnings.push(w));
    expect(warnings.join()).toMatch(/SESSION_SECRET/);
  });

  it("explains bad values", () => {
    expect(() => loadConfig({ ...base, PORT: "eighty" }, () => {})).toThrow(/PORT: must be a whole number/);
    expect(() => loadConfig({ ...base, DB_QUERY_TIMEOUT: "1.5" }, () => {})).toThrow(/DB_QUERY_TIMEOUT/);
    expect(loadConfig({ ...base, DB_QUERY_TIMEOUT: "0" }, () => {}).dbQueryTimeout).toBe(0);
    expect(() => loadConfig({ ...base, PASSWORD_SCRYPT_N: "1000" }, () => {})).toThrow(/power of two/);
    expect(() => loadConfig({ ...base, BEHIND_TLS: "maybe" }, () => {})).toThrow(/BEHIND_TLS/);
    expect(() => loadConfig({ ...base, BEHIND_TLS: "true" }, () => {})).toThrow(
      /BEHIND_TLS: needs TRUST_PROXY/,
    );
    expect(loadConfig({ ...base, BEHIND_TLS: "true", TRUST_PROXY: "1" }, () => {})).toMatchObject({
      behindTls: true,
      trustProxy: 1,
    });
  });
});
