// Starts one embedded PostgreSQL 13 for the whole test run, creates the app database and applies
// the committed migrations. Tests get the URLs through vitest's inject().
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../scripts/lib/embedded-postgres.ts";
import { createDatabase, applyMigrations } from "../../scripts/lib/migrations.ts";
import { freePort } from "./ports.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** postgresql://postgres:postgres@127.0.0.1:PORT/postgres — the server itself */
    pgAdminUrl: string;
    /** the migrated `app` database, direct */
    pgAppUrl: string;
    pgPort: number;
    /** the directory of its Unix socket (.s.PGSQL.<pgPort>) */
    pgSocketDir: string;
  }
}

let pg: EmbeddedPostgres | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-pg13-"));
  const port = await freePort();
  pg = await startEmbeddedPostgres({ dataDir, port, settings: { max_connections: 200 } });
  await createDatabase(pg.url(), "app");
  await applyMigrations(pg.url("app"), path.resolve("prisma/migrations"), () => {});
  project.provide("pgAdminUrl", pg.url());
  project.provide("pgAppUrl", pg.url("app"));
  project.provide("pgPort", port);
  project.provide("pgSocketDir", dataDir);
}

export async function teardown(): Promise<void> {
  await pg?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
