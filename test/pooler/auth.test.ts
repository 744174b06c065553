// Authentication on both sides: clients against the userlist (md5, scram-sha-256, plain, trust),
// auth_query for users not in the file, and the pooler logging in to PostgreSQL with md5 or SCRAM.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { md5Secret } from "../../pooler/protocol/auth/md5.ts";
import { formatScramSecret, scramSecretFromPassword } from "../../pooler/protocol/auth/scram.ts";
import { connect, errorOf, psql } from "../support/clients.ts";
import { startTestPooler, withTestPooler, type TestPooler } from "../support/pooler.ts";

const SCRAM_ROLE = "pooler_scram_user";
const MD5_ROLE = "pooler_md5_user";
const PASSWORD = "s3cret-pw";

let dir: string;
/** The role's secret as PostgreSQL stores it: SCRAM pass-through needs exactly this one. */
let storedScramSecret = "";

beforeAll(async () => {
  const admin = await connect(inject("pgAppUrl"));
  try {
    for (const [role, enc] of [
      [SCRAM_ROLE, "scram-sha-256"],
      [MD5_ROLE, "md5"],
    ]) {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query(`SET password_encryption = '${enc}'`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`);
    }
    const r = await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [SCRAM_ROLE]);
    storedScramSecret = r.rows[0].rolpassword;
  } finally {
    await admin.end();
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-auth-"));
});

afterAll(async () => {
  const admin = await connect(inject("pgAppUrl"));
  await admin.query(`DROP ROLE IF EXISTS ${SCRAM_ROLE}`);
  await admin.query(`DROP ROLE IF EXISTS ${MD5_ROLE}`);
  await admin.end();
  fs.rmSync(dir, { recursive: true, force: true });
});

function userlist(lines: [string, string][]): string {
  const file = path.join(dir, `userlist-${Math.random().toString(36).slice(2)}.txt`);
  fs.writeFileSync(file, lines.map(([u, s]) => `"${u}" "${s}"`).join("\n") + "\n");
  return file;
}

function url(p: TestPooler, user: string, password: string): string {
  return `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:${p.port}/app`;
}

async function whoAmI(u: string): Promise<string> {
  const c = await connect(u);
  try {
    return (await c.query("SELECT current_user AS u")).rows[0].u;
  } finally {
    await c.end();
  }
}

describe.each([
  ["md5", "plain secret", () => PASSWORD],
  ["md5", "md5 secret", () => md5Secret(SCRAM_ROLE, PASSWORD)],
  ["scram-sha-256", "plain secret", () => PASSWORD],
  ["scram-sha-256", "SCRAM secret (copied from pg_authid)", () => storedScramSecret],
  ["plain", "plain secret", () => PASSWORD],
])("AUTH_TYPE=%s with a %s in the userlist", (authType, _kind, secret) => {
  let p: TestPooler;
  beforeAll(async () => {
    const file = userlist([
      [SCRAM_ROLE, secret()],
      [MD5_ROLE, PASSWORD],
    ]);
    p = await startTestPooler({ AUTH_TYPE: authType, AUTH_FILE: file });
  });
  afterAll(() => p.stop());

  it("lets the right password in and logs in to PostgreSQL (SCRAM or md5 as the role needs)", async () => {
    // the SCRAM role makes PostgreSQL ask the pooler for SCRAM, the md5 role for md5
    const canReachScramServer = !(authType === "md5" && _kind === "md5 secret");
    if (canReachScramServer) expect(await whoAmI(url(p, SCRAM_ROLE, PASSWORD))).toBe(SCRAM_ROLE);
    expect(await whoAmI(url(p, MD5_ROLE, PASSWORD))).toBe(MD5_ROLE);
  });

  it("refuses a wrong password with 28P01 and an unknown user the same way", async () => {
    const wrong = await errorOf(connect(url(p, MD5_ROLE, "nope")));
    expect(wrong.code).toBe("28P01");
    const unknown = await errorOf(connect(url(p, "nobody_here", "nope")));
    expect(unknown.code).toBe("28P01");
    expect(unknown.message).toBe('password authentication failed for user "nobody_here"');
  });
});

describe("SCRAM to the server needs the password or the client's SCRAM keys", () => {
  it("a SCRAM secret with another salt than the server's cannot be passed through", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "scram-sha-256",
        AUTH_FILE: userlist([[SCRAM_ROLE, formatScramSecret(scramSecretFromPassword(PASSWORD))]]),
      },
      async (p) => {
        const err = await errorOf(connect(url(p, SCRAM_ROLE, PASSWORD)));
        expect(err.code).toBe("28P01");
        expect(err.message).toMatch(/server login failed/);
      },
    );
  });

  it("an md5-only userlist entry cannot log in to a SCRAM role: the client is told why", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "md5",
        AUTH_FILE: userlist([[SCRAM_ROLE, md5Secret(SCRAM_ROLE, PASSWORD)]]),
      },
      async (p) => {
        const err = await errorOf(connect(url(p, SCRAM_ROLE, PASSWORD)));
        expect(err.message).toMatch(/SCRAM/);
      },
    );
  });
});

describe("auth_query", () => {
  it("looks up users missing from the file through AUTH_USER", async () => {
    await withTestPooler(
      {
        AUTH_TYPE: "scram-sha-256",
        AUTH_FILE: userlist([["postgres", "postgres"]]),
        AUTH_USER: "postgres",
      },
      async (p) => {
        expect(await whoAmI(url(p, SCRAM_ROLE, PASSWORD))).toBe(SCRAM_ROLE);
        const err = await errorOf(connect(url(p, SCRAM_ROLE, "wrong")));
        expect(err.code).toBe("28P01");
      },
    );
  });

  it("asks at every login: a changed password takes effect at once", async () => {
    const role = "pooler_auth_query_user";
    const admin = await connect(inject("pgAppUrl"));
    const p = await startTestPooler({
      AUTH_TYPE: "scram-sha-256",
      AUTH_FILE: userlist([["postgres", "postgres"]]),
      AUTH_USER: "postgres",
    });
    try {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query("SET password_encryption = 'scram-sha-256'");
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'first-pw'`);
      expect(await whoAmI(url(p, role, "first-pw"))).toBe(role);
      await admin.query(`ALTER ROLE ${role} PASSWORD 'second-pw'`);
      expect((await errorOf(connect(url(p, role, "first-pw")))).code).toBe("28P01");
      expect(await whoAmI(url(p, role, "second-pw"))).toBe(role);
    } finally {
      await p.stop();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});

describe("AUTH_TYPE=trust", () => {
  it("lets psql in without a password", async () => {
    const p = await startTestPooler({ AUTH_TYPE: "trust" });
    try {
      const { stdout } = await psql(`postgresql://postgres@127.0.0.1:${p.port}/app`, "SELECT current_user");
      expect(stdout.trim()).toBe("postgres");
    } finally {
      await p.stop();
    }
  });
});
