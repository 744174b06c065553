// A pgbouncer.ini of [databases] lines that a test rewrites before a RELOAD, and the entries the
// RELOAD tests move between: `forced`, to the test PostgreSQL's app, with or without a forced login.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { inject } from "vitest";

/** A pgbouncer.ini of `databases` only, and how to rewrite them for a RELOAD (as PgBouncer's setDatabases). */
export function iniOf(databases: Record<string, string>): {
  ini: string;
  setDatabases: (databases: Record<string, string>) => void;
} {
  const ini = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pooler-reload-")), "pgbouncer.ini");
  const setDatabases = (dbs: Record<string, string>): void =>
    fs.writeFileSync(
      ini,
      ["[databases]", ...Object.entries(dbs).map(([k, v]) => `${k} = ${v}`), "[pgbouncer]"].join("\n"),
    );
  setDatabases(databases);
  return { ini, setDatabases };
}

/** The test PostgreSQL, as in a [databases] line. */
function testServer(): string {
  const server = new URL(inject("pgAppUrl"));
  return `host=${server.hostname} port=${server.port}`;
}

/** `forced` to app, as in a [databases] line, with no forced login. */
export function unforcedEntry(): { forced: string } {
  return { forced: `${testServer()} dbname=app` };
}

/** "*" to the test PostgreSQL, with `login` (" user=… password=…") forced if given. */
export function autodbEntry(login = ""): { "*": string } {
  return { "*": `${testServer()}${login}` };
}

/** `forced` with a forced login to app, as in a [databases] line. */
export function forcedEntry(user: string, password: string): { forced: string } {
  return { forced: `${unforcedEntry().forced} user=${user} password=${password}` };
}
