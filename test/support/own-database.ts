// A database of a describe block's own on the shared test PostgreSQL, for tests that would disturb
// other files' clients of app: counting or terminating every backend, locking a catalog.
import type pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";
import { connect } from "./clients.ts";

export interface OwnDatabase {
  /** Its name, unique to the test process. */
  name: string;
  /** Its direct URL (user postgres), for DATABASE_URL or a connection of the test's. */
  url(): string;
}

/**
 * Created before the block's tests, dropped after them (its connections ended). `encoding`: a
 * server encoding other than the cluster's UTF8 (C locale, as any encoding allows).
 */
export function ownDatabase(prefix: string, encoding?: string): OwnDatabase {
  const name = `${prefix}_${process.pid}`;
  let admin: pg.Client | undefined;
  beforeAll(async () => {
    admin = await connect(inject("pgAdminUrl"));
    const withEncoding = encoding
      ? ` TEMPLATE template0 ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C'`
      : "";
    await admin.query(`CREATE DATABASE ${name}${withEncoding}`);
  });
  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin?.end();
  });
  return {
    name,
    url: () => {
      const url = new URL(inject("pgAdminUrl"));
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}
