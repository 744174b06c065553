// npm run migrate (image: node dist/scripts/migrate.js): applies prisma/migrations to PostgreSQL.
//
// The URL must reach PostgreSQL DIRECTLY, never through the pooler: the runner holds a session-level
// advisory lock (the same key as Prisma Migrate) that a transaction-mode pooler would leave behind on
// a shared server connection. Online, `DIRECT_DATABASE_URL=... npx prisma migrate deploy` is
// equivalent: both keep the same `_prisma_migrations` table and accept each other's history.
import { deployMigrations } from "./lib/deploy.ts";
import { errorMessage, redactUrl } from "./lib/project.ts";

const USAGE = `migrate: no database URL.
Set POSTGRES_DATABASE_URL (or DIRECT_DATABASE_URL) to PostgreSQL itself, not to the pooler, e.g.
  POSTGRES_DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:5432/postgres npm run migrate
The database is created if it does not exist.`;

const url = process.env.DIRECT_DATABASE_URL ?? process.env.POSTGRES_DATABASE_URL;
if (!url) {
  console.error(USAGE);
  process.exit(1);
}
try {
  await deployMigrations(url, (line) => console.log(line));
} catch (err) {
  console.error(`migrate: ${errorMessage(err)} (database ${redactUrl(url)})`);
  process.exitCode = 1;
}
