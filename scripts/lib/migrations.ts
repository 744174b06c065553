// Applies prisma/migrations/* exactly as `prisma migrate deploy` does, using Prisma's own
// `_prisma_migrations` table, so Prisma's engine (online) and this runner (offline: Prisma 7's native
// engine cannot be downloaded here) accept each other's history. Must use a DIRECT connection:
// it holds Prisma Migrate's session advisory lock, which a transaction-mode pooler cannot keep.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";

/** Same key as Prisma Migrate, so the two never run at once against one database. */
const PRISMA_MIGRATE_LOCK = 72707369;

interface AppliedRow {
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  rolled_back_at: Date | null;
}

export class MigrationError extends Error {}

export async function createDatabase(adminUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (rowCount) return false;
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return true;
  } finally {
    await client.end();
  }
}

/** Lowercase hex SHA-256 of the file's bytes: Prisma's checksum. */
function checksum(script: Buffer): string {
  return crypto.createHash("sha256").update(script).digest("hex");
}

/** Prisma also accepts the checksum of the file with its line endings converted either way. */
function sameScript(recorded: string, script: Buffer): boolean {
  const text = script.toString("utf8");
  return [text, text.replace(/\r\n/g, "\n"), text.replace(/(?<!\r)\n/g, "\r\n")].some(
    (t) => checksum(Buffer.from(t, "utf8")) === recorded,
  );
}

export async function applyMigrations(
  directUrl: string,
  dir: string,
  log: (line: string) => void = console.log,
): Promise<string[]> {
  const client = new pg.Client({ connectionString: directUrl });
  await client.connect();
  const appliedNow: string[] = [];
  try {
    await client.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK})`);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum"            VARCHAR(64) NOT NULL,
      "finished_at"         TIMESTAMPTZ,
      "migration_name"      VARCHAR(255) NOT NULL,
      "logs"                TEXT,
      "rolled_back_at"      TIMESTAMPTZ,
      "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    const { rows } = await client.query<AppliedRow>(
      'SELECT "checksum", "finished_at", "migration_name", "rolled_back_at" FROM "_prisma_migrations" ORDER BY "started_at" ASC',
    );
    const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed.length > 0) {
      throw new MigrationError(
        `P3009: failed migrations in the target database: ${failed.map((r) => r.migration_name).join(", ")}. ` +
          "Fix the cause, then mark them rolled back (prisma migrate resolve --rolled-back <name>) and run again.",
      );
    }
    const applied = new Map(
      rows
        .filter((r) => r.finished_at !== null && r.rolled_back_at === null)
        .map((r) => [r.migration_name, r]),
    );
    const names = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, "migration.sql")))
      .map((d) => d.name)
      .sort();
    for (const name of names) {
      const script = fs.readFileSync(path.join(dir, name, "migration.sql"));
      const done = applied.get(name);
      if (done) {
        if (!sameScript(done.checksum, script))
          log(`warning: migration ${name} was modified after it was applied`);
        continue;
      }
      const id = crypto.randomUUID();
      await client.query(
        'INSERT INTO "_prisma_migrations" ("id", "checksum", "started_at", "migration_name") VALUES ($1, $2, now(), $3)',
        [id, checksum(script), name],
      );
      try {
        // No parameters: simple query protocol, the whole file in one implicit transaction.
        await client.query(script.toString("utf8"));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await client.query('UPDATE "_prisma_migrations" SET "logs" = $1 WHERE "id" = $2', [message, id]);
        throw new MigrationError(`migration ${name} failed: ${message}`);
      }
      await client.query(
        'UPDATE "_prisma_migrations" SET "applied_steps_count" = "applied_steps_count" + 1, "finished_at" = now() WHERE "id" = $1',
        [id],
      );
      log(`applied ${name}`);
      appliedNow.push(name);
    }
    log(appliedNow.length ? `${appliedNow.length} migration(s) applied` : "No pending migrations to apply.");
    return appliedNow;
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${PRISMA_MIGRATE_LOCK})`).catch(() => undefined);
    await client.end();
  }
}
