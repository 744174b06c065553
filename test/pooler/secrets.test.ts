// No secret leaves the pooler through its logs or its console. Secrets are put everywhere they can
// be (DATABASE_URL, a [databases] connect string with password=, a userlist with a plain password,
// an md5 hash and a SCRAM secret, auth_user + auth_query), the most verbose logging is on, and
// logins succeed and fail with md5 and SCRAM; then every SHOW and a RELOAD are run and everything
// written or shown is searched for each secret and for anything shaped like one.
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { md5Secret } from "../../pooler/protocol/auth/md5.ts";
import { connect, errorOf, psql, whoAmI } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";

/** Each role's password: distinctive, so that any copy of it is found. */
const ROLES = {
  url: { name: "secrets_url_user", password: "Url-pw-5e1f9c", encryption: "scram-sha-256" },
  forced: { name: "secrets_forced_user", password: "Forced-pw-77ad02", encryption: "scram-sha-256" },
  md5: { name: "secrets_md5_user", password: "Md5-pw-3b8e41", encryption: "md5" },
  scram: { name: "secrets_scram_user", password: "Scram-pw-c90d5a", encryption: "scram-sha-256" },
  query: { name: "secrets_query_user", password: "Query-pw-1f6e2b", encryption: "scram-sha-256" },
  auth: { name: "secrets_auth_user", password: "Auth-pw-8a4c73", encryption: "scram-sha-256" },
} as const;
const WRONG_PASSWORD = "Wrong-pw-64b0e9";

/** Shapes of secrets, whoever's: md5 hashes and responses, SCRAM secrets and messages, URLs and connect strings with a password. */
const SECRET_SHAPES = [
  /md5[0-9a-f]{32}/,
  /SCRAM-SHA-256\$/,
  /c=biws/, // a SCRAM client-final-message, which carries the proof
  /[pv]=[A-Za-z0-9+/]{40,}={0,2}/, // a SCRAM proof or server signature
  /password\s*=\s*[^\s,;'"]/i,
  /:\/\/[^\s/:@]+:[^\s/@]+@/,
];

let dir: string;
/** What PostgreSQL stores for the SCRAM roles, as auth_query and pass-through see it. */
const storedScram = new Map<string, string>();

beforeAll(async () => {
  const admin = await connect(inject("pgAppUrl"));
  try {
    for (const role of Object.values(ROLES)) {
      await admin.query(`DROP ROLE IF EXISTS ${role.name}`);
      await admin.query(`SET password_encryption = '${role.encryption}'`);
      // auth_query reads pg_authid, which only a superuser may.
      const superuser = role === ROLES.auth ? "SUPERUSER" : "";
      await admin.query(`CREATE ROLE ${role.name} LOGIN ${superuser} PASSWORD '${role.password}'`);
      const r = await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role.name]);
      if (role.encryption === "scram-sha-256") storedScram.set(role.name, r.rows[0].rolpassword);
    }
  } finally {
    await admin.end();
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-secrets-"));
});

afterAll(async () => {
  const admin = await connect(inject("pgAppUrl"));
  for (const role of Object.values(ROLES)) await admin.query(`DROP ROLE IF EXISTS ${role.name}`);
  await admin.end();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A SCRAM secret's StoredKey and ServerKey, and the ClientKey a login derives from the password. */
function scramKeys(secret: string, password: string): Buffer[] {
  const [, iterSalt, keys] = secret.split("$") as [string, string, string];
  const [iterations, salt] = iterSalt.split(":") as [string, string];
  const [storedKey, serverKey] = keys.split(":") as [string, string];
  const salted = pbkdf2Sync(password, Buffer.from(salt, "base64"), Number(iterations), 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  return [Buffer.from(storedKey, "base64"), Buffer.from(serverKey, "base64"), clientKey, salted];
}

/** Every secret of this test, in each form it could be written in. */
function secretStrings(): string[] {
  const out: string[] = [WRONG_PASSWORD];
  for (const role of Object.values(ROLES)) {
    out.push(role.password, md5Secret(role.name, role.password));
    const scram = storedScram.get(role.name);
    if (scram === undefined) continue;
    out.push(scram);
    for (const key of scramKeys(scram, role.password)) out.push(key.toString("base64"), key.toString("hex"));
  }
  // The md5 of the bare password, as some tools store it.
  for (const role of Object.values(ROLES)) out.push(createHash("md5").update(role.password).digest("hex"));
  return out;
}

/** The secrets, and the shapes of secrets, that `text` contains. */
function leaks(text: string): string[] {
  return [
    ...secretStrings().filter((secret) => text.includes(secret)),
    ...SECRET_SHAPES.filter((shape) => shape.test(text)).map(String),
  ];
}

describe("secrets in the pooler's logs and console", () => {
  let tp: TestPooler;
  let userlist: string;
  let ini: string;
  let databaseUrl: string;

  beforeAll(async () => {
    const pgPort = inject("pgPort");
    userlist = path.join(dir, "userlist.txt");
    fs.writeFileSync(
      userlist,
      [
        `"${ROLES.auth.name}" "${ROLES.auth.password}"`,
        `"${ROLES.md5.name}" "${md5Secret(ROLES.md5.name, ROLES.md5.password)}"`,
        `"${ROLES.scram.name}" "${storedScram.get(ROLES.scram.name)}"`,
      ].join("\n") + "\n",
    );
    ini = path.join(dir, "pgbouncer.ini");
    fs.writeFileSync(
      ini,
      [
        "[databases]",
        `forced = host=127.0.0.1 port=${pgPort} dbname=app user=${ROLES.forced.name} password=${ROLES.forced.password}`,
        "[pgbouncer]",
        "auth_type = md5",
        `auth_file = ${userlist}`,
        `auth_user = ${ROLES.auth.name}`,
        `admin_users = ${ROLES.url.name}`,
        `stats_users = ${ROLES.md5.name}`,
      ].join("\n") + "\n",
    );
    databaseUrl = `postgresql://${ROLES.url.name}:${ROLES.url.password}@127.0.0.1:${pgPort}/app`;
    tp = await startTestPooler({ DATABASE_URL: databaseUrl, VERBOSE: "2" }, ini);
  });

  afterAll(() => tp.stop());

  it("logs in with every kind of secret, refuses wrong passwords, and neither logs nor shows a secret", async () => {
    // md5 against an md5 hash, SCRAM against a SCRAM secret (an md5 pooler switches to SCRAM for
    // it, as PgBouncer does), SCRAM through auth_query, the DATABASE_URL login, a forced user.
    expect(await whoAmI(tp.urlAs(ROLES.md5.name, ROLES.md5.password))).toBe(ROLES.md5.name);
    expect(await whoAmI(tp.urlAs(ROLES.scram.name, ROLES.scram.password))).toBe(ROLES.scram.name);
    expect(await whoAmI(tp.urlAs(ROLES.query.name, ROLES.query.password))).toBe(ROLES.query.name);
    expect(await whoAmI(tp.urlAs(ROLES.url.name, ROLES.url.password))).toBe(ROLES.url.name);
    expect(await whoAmI(tp.urlAs(ROLES.md5.name, ROLES.md5.password, "forced"))).toBe(ROLES.forced.name);
    const { stdout } = await psql(tp.urlAs(ROLES.scram.name, ROLES.scram.password), "SELECT current_user");
    expect(stdout.trim()).toBe(ROLES.scram.name);
    for (const role of [ROLES.md5, ROLES.scram, ROLES.query, ROLES.url]) {
      expect((await errorOf(connect(tp.urlAs(role.name, WRONG_PASSWORD)))).code, role.name).toBe("28P01");
    }

    const shown: unknown[] = [];
    const admin = await connect(tp.urlAs(ROLES.url.name, ROLES.url.password, "pgbouncer"));
    const stats = await connect(tp.urlAs(ROLES.md5.name, ROLES.md5.password, "pgbouncer"));
    try {
      const notices: string[] = [];
      admin.on("notice", (n) => notices.push(`${n.message}${n.detail ?? ""}`));
      await admin.query("SHOW HELP");
      // "SHOW HELP|CONFIG|DATABASES|…" lines name every SHOW.
      const commands = [...notices.join("\n").matchAll(/SHOW ([A-Z_|]+)/g)].flatMap((m) => m[1]!.split("|"));
      expect(commands).toEqual(
        expect.arrayContaining(["CONFIG", "DATABASES", "USERS", "CLIENTS", "SERVERS"]),
      );
      // Clients logged in and connected to the forced database while the SHOWs run.
      const held = await Promise.all([
        connect(tp.urlAs(ROLES.scram.name, ROLES.scram.password)),
        connect(tp.urlAs(ROLES.md5.name, ROLES.md5.password, "forced")),
      ]);
      try {
        for (const client of [admin, stats] as pg.Client[]) {
          for (const command of commands) shown.push(command, (await client.query(`SHOW ${command}`)).rows);
        }
      } finally {
        for (const c of held) await c.end();
      }
      await admin.query("RELOAD");
      shown.push(
        notices,
        (await admin.query("SHOW CONFIG")).rows,
        (await admin.query("SHOW DATABASES")).rows,
      );
      // A stats user is told no, and the refusal is logged.
      expect((await errorOf(stats.query("RELOAD"))).code).toBe("08P01");
    } finally {
      await admin.end();
      await stats.end();
    }

    const logs = JSON.stringify(tp.logs);
    const console_ = JSON.stringify(shown);
    expect(logs).toMatch(/"level":20/); // debug lines were written (VERBOSE=2 logs everything)
    expect(console_).toContain(ROLES.forced.name); // SHOW DATABASES names the forced user, not its password
    console.log(`secrets: ${tp.logs.length} log lines and ${console_.length} bytes of SHOW output searched`);
    expect(leaks(logs), "in the logs").toEqual([]);
    expect(leaks(console_), "in SHOW output").toEqual([]);
    // The search finds what it looks for: the files and the URL the pooler was given are full of it.
    const given = [fs.readFileSync(ini, "utf8"), fs.readFileSync(userlist, "utf8"), databaseUrl].join("\n");
    expect(leaks(given)).toEqual(
      expect.arrayContaining([
        ROLES.forced.password,
        ROLES.url.password,
        ROLES.auth.password,
        md5Secret(ROLES.md5.name, ROLES.md5.password),
        storedScram.get(ROLES.scram.name),
        String(/md5[0-9a-f]{32}/),
        String(/SCRAM-SHA-256\$/),
        String(/password\s*=\s*[^\s,;'"]/i),
        String(/:\/\/[^\s/:@]+:[^\s/@]+@/),
      ]),
    );
  });
});
