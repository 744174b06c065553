// Applies prisma/migrations/* exactly as `prisma migrate deploy` does, using Prisma's own
// `_prisma_migrations` table, so Prisma's engine (online) and this runner (offline: Prisma 7's native
// engine cannot be downloaded here) accept each other's history. Must use a DIRECT connection:
// it holds Prisma Migrate's session advisory lock, which a transaction-mode pooler cannot keep.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";

/** Same key as Prisma Migrate, so the two never run at once against one database. */
export const PRISMA_MIGRATE_LOCK = 72707369;

/** Prisma Migrate waits this long for the lock, then fails with P1002. */
const LOCK_TIMEOUT_MS = 10_000;
const LOCK_RETRY_MS = 100;

export interface ApplyOptions {
  lockTimeoutMs?: number;
}

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

/**
 * Takes the migration lock, waiting at most `timeoutMs` as Prisma Migrate does. An unbounded
 * pg_advisory_lock would hang for good behind a lock no one will release: one left on a pooled
 * server connection by a run through a transaction-mode pooler.
 */
async function lockMigrations(client: pg.Client, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean; pid: number }>(
      `SELECT pg_try_advisory_lock(${PRISMA_MIGRATE_LOCK}) AS locked, pg_backend_pid() AS pid`,
    );
    if (rows[0]?.locked) return rows[0].pid;
    if (Date.now() >= deadline) {
      throw new MigrationError(
        `P1002: timed out after ${timeoutMs / 1000} s waiting for the migration lock ` +
          `(pg_advisory_lock(${PRISMA_MIGRATE_LOCK})): another migration is running, or a session still ` +
          "holds it (one that ran migrations through a transaction-mode pooler: see pg_locks, or RECONNECT the pooler).",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
}

/**
 * The lock is held by the PostgreSQL session that took it: behind a transaction-mode pooler the next
 * statement may run in another one, unprotected, and the lock stays behind on a pooled server.
 */
async function assertLockingSession(client: pg.Client, lockPid: number): Promise<void> {
  const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  const pid = rows[0]?.pid;
  if (pid === lockPid) return;
  throw new MigrationError(
    `not a direct connection to PostgreSQL: the migration lock was taken by backend ${lockPid} and the ` +
      `next statement ran in backend ${pid}, as behind a transaction-mode pooler. Give PostgreSQL's own ` +
      `address (POSTGRES_DATABASE_URL / DIRECT_DATABASE_URL), and end backend ${lockPid}, which still holds ` +
      `the lock: SELECT pg_terminate_backend(${lockPid}) (or RECONNECT the pooler).`,
  );
}

export async function applyMigrations(
  directUrl: string,
  dir: string,
  log: (line: string) => void = console.log,
  { lockTimeoutMs = LOCK_TIMEOUT_MS }: ApplyOptions = {},
): Promise<string[]> {
  const client = new pg.Client({ connectionString: directUrl });
  await client.connect();
  const appliedNow: string[] = [];
  try {
    const lockPid = await lockMigrations(client, lockTimeoutMs);
    await assertLockingSession(client, lockPid);
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
      await assertLockingSession(client, lockPid);
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
