import crypto from "node:crypto";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import { md5Response, md5Secret, md5Verify } from "./md5.ts";

const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);

describe("md5Secret", () => {
  it("matches PostgreSQL's stored form for a known value", () => {
    expect(md5Secret("postgres", "postgres")).toBe("md53175bce1d3201d16594cebf9d7eb3f9d");
  });
});

describe("md5Response", () => {
  it("hashes the hex of the secret with the salt", () => {
    const inner = crypto.createHash("md5").update("postgrespostgres").digest("hex");
    const outer = crypto.createHash("md5").update(inner).update(salt).digest("hex");
    expect(md5Response("postgres", "postgres", salt)).toBe(`md5${outer}`);
  });

  it("gives the same answer from the password and from its stored secret", () => {
    expect(md5Response("alice", md5Secret("alice", "s3cret"), salt)).toBe(
      md5Response("alice", "s3cret", salt),
    );
  });

  it("depends on the salt and the user", () => {
    const r = md5Response("alice", "s3cret", salt);
    expect(md5Response("alice", "s3cret", Buffer.from([4, 3, 2, 1]))).not.toBe(r);
    expect(md5Response("bob", "s3cret", salt)).not.toBe(r);
  });

  it("refuses a salt that is not 4 bytes", () => {
    expect(() => md5Response("alice", "s3cret", Buffer.alloc(3))).toThrow(RangeError);
  });
});

describe("md5Verify", () => {
  const answer = md5Response("alice", "s3cret", salt);

  it("accepts the right answer against a plain password or an md5 secret", () => {
    expect(md5Verify("alice", { kind: "plain", secret: "s3cret" }, salt, answer)).toBe(true);
    expect(md5Verify("alice", { kind: "md5", secret: md5Secret("alice", "s3cret") }, salt, answer)).toBe(
      true,
    );
  });

  it("rejects a wrong password, another user's answer or a wrong salt", () => {
    expect(md5Verify("alice", { kind: "plain", secret: "other" }, salt, answer)).toBe(false);
    expect(md5Verify("bob", { kind: "plain", secret: "s3cret" }, salt, answer)).toBe(false);
    const otherSalt = Buffer.from([9, 9, 9, 9]);
    expect(md5Verify("alice", { kind: "plain", secret: "s3cret" }, otherSalt, answer)).toBe(false);
  });

  it("rejects answers of another length and malformed stored secrets without throwing", () => {
    expect(md5Verify("alice", { kind: "plain", secret: "s3cret" }, salt, "")).toBe(false);
    expect(md5Verify("alice", { kind: "plain", secret: "s3cret" }, salt, `${answer}0`)).toBe(false);
    expect(md5Verify("alice", { kind: "md5", secret: "s3cret" }, salt, answer)).toBe(false);
    const upperCase = md5Secret("alice", "s3cret").toUpperCase();
    expect(md5Verify("alice", { kind: "md5", secret: upperCase }, salt, answer)).toBe(false);
  });

  it("treats a plain password that looks like an md5 secret as a password", () => {
    const lookalike = md5Secret("x", "y");
    const asPassword = md5Response("alice", md5Secret("alice", lookalike), salt);
    expect(md5Verify("alice", { kind: "plain", secret: lookalike }, salt, asPassword)).toBe(true);
  });
});

describe("md5Secret against PostgreSQL 13", () => {
  it("equals the rolpassword PostgreSQL stores", async () => {
    const client = new pg.Client({ connectionString: inject("pgAdminUrl") });
    await client.connect();
    try {
      await client.query("SET password_encryption = 'md5'");
      await client.query("DROP ROLE IF EXISTS auth_md5_u");
      await client.query("CREATE ROLE auth_md5_u LOGIN PASSWORD 'secret-pw'");
      const r = await client.query<{ rolpassword: string }>(
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'auth_md5_u'",
      );
      expect(r.rows[0]!.rolpassword).toBe(md5Secret("auth_md5_u", "secret-pw"));
      await client.query("DROP ROLE auth_md5_u");
    } finally {
      await client.end();
    }
  });
});
