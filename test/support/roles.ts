// PostgreSQL roles and PgBouncer userlist files for authentication tests.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { formatScramSecret, scramSecretFromPassword } from "../../pooler/protocol/auth/scram.ts";
import { connect } from "./clients.ts";

/**
 * (Re)creates a login role with `password` stored as `encryption` says, on the server at
 * `adminUrl`; returns the secret PostgreSQL stored (what SCRAM pass-through needs in a userlist).
 */
export async function createLoginRole(
  adminUrl: string,
  role: string,
  password: string,
  encryption: "md5" | "scram-sha-256",
): Promise<string> {
  const admin = await connect(adminUrl);
  try {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`SET password_encryption = '${encryption}'`);
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    const r = await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
    return r.rows[0].rolpassword;
  } finally {
    await admin.end();
  }
}

export async function dropRole(adminUrl: string, role: string): Promise<void> {
  const admin = await connect(adminUrl);
  try {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
  } finally {
    await admin.end();
  }
}

/**
 * A SCRAM secret for `password` whose iteration count makes PBKDF2 take about `ms` on this machine
 * (measured), so that the derivation stands out from any scheduling noise.
 */
export async function slowScramSecret(password: string, ms: number): Promise<string> {
  const t0 = performance.now();
  crypto.pbkdf2Sync("calibrate", "salt", 50_000, 32, "sha256");
  const iterations = Math.round((50_000 * ms) / (performance.now() - t0));
  return formatScramSecret(await scramSecretFromPassword(password, iterations));
}

/** A temporary folder of PgBouncer userlist.txt files ("user" "secret" per line). */
export class UserlistDir {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-userlist-"));
  private count = 0;

  /** Writes a new userlist file; returns its path. */
  write(entries: [string, string][]): string {
    const file = path.join(this.dir, `userlist-${++this.count}.txt`);
    fs.writeFileSync(file, entries.map(([u, s]) => `"${u}" "${s}"`).join("\n") + "\n");
    return file;
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
