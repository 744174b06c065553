// A PostgreSQL 13 of a test's own, for tests that restart or reconfigure the server: doing that to
// the shared one (global-setup.ts) would break the test files running beside them.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../scripts/lib/embedded-postgres.ts";
import { applyMigrations, createDatabase } from "../../scripts/lib/migrations.ts";
import { freePort } from "./ports.ts";

export interface PrivatePostgres {
  readonly port: number;
  /** postgresql://postgres:postgres@127.0.0.1:PORT/<db> */
  url(database?: string): string;
  /** Stops the server ("fast" or "immediate"), waits `downMs`, starts it again on the same port. */
  restart(mode: "fast" | "immediate", downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Create the `app` database with the committed migrations applied. */
  appDatabase?: boolean;
  /** A port of its own choosing (on another listen_addresses than the shared server's, say). */
  port?: number;
  /**
   * Restart it as a hot standby (standby.signal) with no primary to follow: it serves read-only
   * sessions and stays in recovery, which is what target_session_attrs looks at.
   */
  standby?: boolean;
}

export async function startPrivatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-private-pg13-"));
  const port = opts.port ?? (await freePort());
  const start = (): Promise<EmbeddedPostgres> =>
    startEmbeddedPostgres({ dataDir, port, settings: { max_connections: 100, ...opts.settings } });
  let pg = await start();
  if (opts.appDatabase) {
    await createDatabase(pg.url(), "app");
    await applyMigrations(pg.url("app"), path.resolve("prisma/migrations"), () => {});
  }
  if (opts.standby) {
    await pg.stop();
    fs.writeFileSync(path.join(dataDir, "standby.signal"), "");
    pg = await start();
  }
  return {
    port,
    url: (database) => pg.url(database),
    async restart(mode, downMs = 0) {
      await pg.stop(mode);
      await new Promise((r) => setTimeout(r, downMs));
      pg = await start();
    },
    async stop() {
      await pg.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
