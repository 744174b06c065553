import { describe, expect, it } from "vitest";
import {
  hashPassword,
  needsRehash,
  rejectPasswordInConstantTime,
  unusablePassword,
  verifyPassword,
} from "../../app/auth/passwords.ts";
import { validatePassword } from "../../app/auth/password-validation.ts";
import { fullwidth } from "./support.ts";

const N = 2 ** 10;

describe("password hashing (scrypt)", () => {
  it("stores algorithm, parameters, salt and hash, and verifies only the right password", async () => {
    const encoded = await hashPassword("s3cret-Password", { N });
    expect(encoded).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyPassword("s3cret-Password", encoded)).toBe(true);
    expect(await verifyPassword("s3cret-password", encoded)).toBe(false);
    expect(await verifyPassword("", encoded)).toBe(false);
  });

  it("uses a new salt for every hash", async () => {
    const [a, b] = await Promise.all([hashPassword("same", { N }), hashPassword("same", { N })]);
    expect(a).not.toBe(b);
    expect(a.split("$")[4]).not.toBe(b.split("$")[4]);
  });

  it("verifies with the parameters stored in the hash, whatever today's cost is", async () => {
    const cheap = await hashPassword("pw-123456", { N: 2 ** 11 });
    expect(await verifyPassword("pw-123456", cheap)).toBe(true);
    expect(needsRehash(cheap, { N: 2 ** 12 })).toBe(true);
    expect(needsRehash(cheap, { N: 2 ** 11 })).toBe(false);
  });

  it("uses OWASP's cost N=2^17 by default", async () => {
    const encoded = await hashPassword("default-cost");
    expect(encoded.split("$").slice(0, 4)).toEqual(["scrypt", String(2 ** 17), "8", "1"]);
    expect(await verifyPassword("default-cost", encoded)).toBe(true);
  });

  it("matches the same password typed composed or decomposed (NFKC)", async () => {
    const encoded = await hashPassword("caf\u00e9-latte", { N });
    expect(await verifyPassword("cafe\u0301-latte", encoded)).toBe(true);
  });

  it("never accepts an unusable password, a malformed hash or a missing user", async () => {
    expect(await verifyPassword("", unusablePassword(), { N })).toBe(false);
    expect(unusablePassword().startsWith("!")).toBe(true);
    for (const bad of [
      "",
      "scrypt$",
      "scrypt$x$8$1$a$b",
      "pbkdf2_sha256$1$a$b",
      "scrypt$1024$8$1$a$b$extra",
    ]) {
      expect(await verifyPassword("anything", bad, { N })).toBe(false);
    }
    expect(await rejectPasswordInConstantTime("anything", { N })).toBe(false);
  });
});

describe("Django's password validators", () => {
  it("accepts a good password", () => {
    expect(validatePassword("violet-tugboat-91", { username: "alice", email: "alice@example.com" })).toEqual(
      [],
    );
  });

  it("reports each broken rule in Django's words", () => {
    expect(validatePassword("1234")).toEqual([
      "This password is too short. It must contain at least 8 characters.",
      "This password is too common.",
      "This password is entirely numeric.",
    ]);
    expect(validatePassword("84736251")).toEqual(["This password is entirely numeric."]);
    expect(validatePassword("Password1")).toEqual(["This password is too common."]);
    // Django compares password.lower().strip(): Python strips U+001C-U+001F and NEL too.
    expect(validatePassword("\u001cPassword1\u0085")).toEqual(["This password is too common."]);
  });

  it("judges the password that is stored (NFKC): a full-width common password is that common password", async () => {
    // An input method left in full-width mode: "ｍｉｃｈｅｌｌｅ" is stored as, and unlocked by, "michelle".
    const typed = fullwidth("michelle");
    expect(await verifyPassword("michelle", await hashPassword(typed, { N }))).toBe(true);
    expect(validatePassword(typed)).toEqual(["This password is too common."]);
    expect(validatePassword(fullwidth("84736251"))).toEqual(["This password is entirely numeric."]);
    // Python's isdigit(), as Django's NumericPasswordValidator: digits of any script.
    expect(validatePassword("٨٤٧٣٦٢٥١٩")).toEqual(["This password is entirely numeric."]);
    expect(validatePassword(fullwidth("administrator1"), { username: "administrator" })).toContain(
      "The password is too similar to the username.",
    );
  });

  it("refuses passwords too similar to the username or the email address", () => {
    expect(validatePassword("administrator1", { username: "administrator" })).toContain(
      "The password is too similar to the username.",
    );
    expect(validatePassword("jane.doe@example", { username: "zz", email: "jane.doe@example.com" })).toContain(
      "The password is too similar to the email address.",
    );
    // A short username inside a long password does not make it guessable (Django's length ratio).
    expect(validatePassword("bo-violet-tugboat-91", { username: "bo" })).toEqual([]);
  });
});
