// `prisma migrate deploy`, offline: creates the target database if it does not exist yet, then applies
// prisma/migrations with Prisma's own bookkeeping (scripts/lib/migrations.ts). Needs a DIRECT URL.
import { applyMigrations, createDatabase } from "./migrations.ts";
import { migrationsDir } from "./project.ts";

/** PostgreSQL's invalid_catalog_name: `database "x" does not exist`. */
const MISSING_DATABASE = "3D000";

export async function deployMigrations(directUrl: string, log: (line: string) => void): Promise<string[]> {
  try {
    return await applyMigrations(directUrl, migrationsDir, log);
  } catch (err) {
    if ((err as { code?: unknown }).code !== MISSING_DATABASE) throw err;
  }
  // Create it from the server's `postgres` database, as `prisma migrate deploy` does.
  const admin = new URL(directUrl);
  const name = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = "/postgres";
  await createDatabase(admin.toString(), name);
  log(`created database "${name}"`);
  return applyMigrations(directUrl, migrationsDir, log);
}
