// `npm run migrate` against a database that does not exist yet, twice. The `_prisma_migrations` rows
// must be exactly what Prisma Migrate writes, so that `prisma migrate deploy/status` (online) accepts
// the history (tools/prisma6 runs Prisma's own engine on it: test/infra/prisma6.test.ts).
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  applyMigrations,
  createDatabase,
  MigrationError,
  PRISMA_MIGRATE_LOCK,
} from "../../scripts/lib/migrations.ts";
import { hasPgBouncer, startPgBouncer, type PgBouncer } from "../support/pgbouncer.ts";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const migrationsDir = path.join(root, "prisma", "migrations");

function databaseUrl(name: string): string {
  const url = new URL(inject("pgAdminUrl"));
  url.pathname = `/${name}`;
  return url.toString();
}

const migrationNames = () =>
  fs
    .readdirSync(migrationsDir)
    .filter((n) => fs.existsSync(path.join(migrationsDir, n, "migration.sql")))
    .sort();

const readMigration = (migration: string) =>
  fs.readFileSync(path.join(migrationsDir, migration, "migration.sql"));

function migrate(env: NodeJS.ProcessEnv) {
  const clean = { ...process.env };
  for (const name of ["DATABASE_URL", "POSTGRES_DATABASE_URL", "DIRECT_DATABASE_URL"]) delete clean[name];
  return run(path.join(root, "node_modules/.bin/tsx"), ["scripts/migrate.ts"], {
    cwd: root,
    env: { ...clean, ...env },
  });
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("npm run migrate", () => {
  const name = `migrate_test_${process.pid}`;
  const url = databaseUrl(name);
  let first: string;
  let second: string;

  beforeAll(async () => {
    first = (await migrate({ POSTGRES_DATABASE_URL: url })).stdout;
    second = (await migrate({ DIRECT_DATABASE_URL: url })).stdout;
  });

  afterAll(async () => {
    await query(inject("pgAdminUrl"), `DROP DATABASE IF EXISTS ${name}`);
  });

  it("creates the database, applies every migration, then has nothing left to apply", async () => {
    expect(first).toContain(`created database "${name}"`);
    for (const migration of migrationNames()) expect(first).toContain(`applied ${migration}`);
    expect(second.trim()).toBe("No pending migrations to apply.");

    const tables = await query<{ table_name: string }>(
      url,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    const created = migrationNames().flatMap((migration) =>
      [
        ...readMigration(migration)
          .toString()
          .matchAll(/^CREATE TABLE "(\w+)"/gm),
      ].map((m) => m[1]),
    );
    expect(tables.map((t) => t.table_name)).toEqual(["_prisma_migrations", ...created].sort());
  });

  it("keeps Prisma's bookkeeping: its table layout, one finished row per migration, sha256 checksums", async () => {
    const columns = await query(
      url,
      `SELECT column_name, data_type, character_maximum_length AS length, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    // Prisma Migrate's CREATE TABLE (sql-schema-connector, flavour/postgres.rs)
    expect(columns).toEqual([
      {
        column_name: "id",
        data_type: "character varying",
        length: 36,
        is_nullable: "NO",
        column_default: null,
      },
      {
        column_name: "checksum",
        data_type: "character varying",
        length: 64,
        is_nullable: "NO",
        column_default: null,
      },
      {
        column_name: "finished_at",
        data_type: "timestamp with time zone",
        length: null,
        is_nullable: "YES",
        column_default: null,
      },
      {
        column_name: "migration_name",
        data_type: "character varying",
        length: 255,
        is_nullable: "NO",
        column_default: null,
      },
      { column_name: "logs", data_type: "text", length: null, is_nullable: "YES", column_default: null },
      {
        column_name: "rolled_back_at",
        data_type: "timestamp with time zone",
        length: null,
        is_nullable: "YES",
        column_default: null,
      },
      {
        column_name: "started_at",
        data_type: "timestamp with time zone",
        length: null,
        is_nullable: "NO",
        column_default: "now()",
      },
      {
        column_name: "applied_steps_count",
        data_type: "integer",
        length: null,
        is_nullable: "NO",
        column_default: "0",
      },
    ]);

    const rows = await query(
      url,
      `SELECT id, checksum, migration_name, logs, rolled_back_at, applied_steps_count, finished_at IS NOT NULL AS finished
         FROM _prisma_migrations ORDER BY started_at`,
    );
    const expected = migrationNames().map((migration) => ({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      checksum: crypto
        .createHash("sha256")
        .update(fs.readFileSync(path.join(migrationsDir, migration, "migration.sql")))
        .digest("hex"),
      migration_name: migration,
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
      finished: true,
    }));
    expect(rows).toEqual(expected);
  });

  it("refuses to run without a direct URL", async () => {
    const failure = await migrate({}).catch((err: { code: number; stderr: string }) => err);
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toContain("Set POSTGRES_DATABASE_URL");
  });
});

describe("the migration lock", () => {
  const name = `migrate_lock_${process.pid}`;
  const url = databaseUrl(name);

  beforeAll(() => createDatabase(inject("pgAdminUrl"), name));
  afterAll(() => query(inject("pgAdminUrl"), `DROP DATABASE IF EXISTS ${name}`));

  it("is waited for a bounded time, then refused with Prisma's P1002, not waited for forever", async () => {
    // What a run through a transaction-mode pooler leaves behind: the lock held by a session that
    // nobody will end (or another migration that hangs).
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK})`);
      const started = Date.now();
      const failure = await applyMigrations(url, migrationsDir, () => {}, { lockTimeoutMs: 500 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(MigrationError);
      expect((failure as Error).message).toMatch(
        /^P1002: timed out after 0\.5 s waiting for the migration lock/,
      );
      expect(Date.now() - started).toBeLessThan(5000);
      const tables = await query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'core_post'");
      expect(tables).toEqual([]);
    } finally {
      await holder.end();
    }
  });
});

describe.skipIf(!hasPgBouncer())("npm run migrate pointed at a transaction-mode pooler by mistake", () => {
  const name = `migrate_pooled_${process.pid}`;
  const url = databaseUrl(name);
  let bouncer: PgBouncer;

  beforeAll(async () => {
    await createDatabase(inject("pgAdminUrl"), name);
    const server = new URL(url);
    // Round robin: a client's consecutive statements go to the pool's servers in turn.
    bouncer = await startPgBouncer(
      { [name]: `host=${server.hostname} port=${server.port} dbname=${name}` },
      { pool_mode: "transaction", default_pool_size: 2, server_round_robin: 1 },
    );
    // Two servers in the pool, from two transactions at once.
    const clients = [new pg.Client(bouncer.url(name)), new pg.Client(bouncer.url(name))];
    for (const c of clients) await c.connect();
    for (const c of clients) await c.query("BEGIN; SELECT 1");
    for (const c of clients) await c.query("ROLLBACK");
    for (const c of clients) await c.end();
  }, 30_000);
  afterAll(async () => {
    await bouncer?.stop();
    await query(inject("pgAdminUrl"), `DROP DATABASE IF EXISTS ${name}`);
  });

  it("stops with an error that says so, before applying anything", async () => {
    const failure = await applyMigrations(bouncer.url(name), migrationsDir, () => {}).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as Error).message).toMatch(/not a direct connection to PostgreSQL/);
    expect(await query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'core_post'")).toEqual([]);
  });
});
