// Test harness for the web app: the real createApp() with a real Prisma and session store on
// appDatabase().url (through our pooler), each test file in a schema of its own
// so that files running in parallel never see each other's posts and users.
import { randomBytes } from "node:crypto";
import pg from "pg";
import request from "supertest";
import type { Express } from "express";
import type { Logger } from "pino";
import { appDatabase, type AppDatabase } from "../support/database.ts";
import { connectDatabase, type Database } from "../../app/db.ts";
import { createSessionStore, type SessionStore } from "../../app/auth/session.ts";
import { createApp, type AppSettings } from "../../app/app.ts";
import { DEFAULT_DB_QUERY_TIMEOUT, poolerConsoleUrl } from "../../app/config.ts";
import { PoolerMonitor, type PoolerMonitorOptions } from "../../app/pooler/monitor.ts";
import { hashPassword } from "../../app/auth/passwords.ts";
import type { User } from "../../app/generated/prisma/client.ts";

/** The cheapest scrypt cost the config accepts: the tests hash many passwords. */
export const TEST_SCRYPT_N = 2 ** 10;

export const settings: AppSettings = {
  production: false,
  sessionSecret: "test-session-secret-that-is-long-enough",
  behindTls: false,
  trustProxy: 0,
  scryptN: TEST_SCRYPT_N,
  logLevel: "silent",
};

const TABLES = ["core_post", "auth_user", "session", "django_admin_log"];

/** A schema with empty copies of the migrated tables (ids still come from the public sequences). */
export async function createSchema(directUrl: string): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: directUrl });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${name}`);
    for (const table of TABLES) {
      await client.query(`CREATE TABLE ${name}.${table} (LIKE public.${table} INCLUDING ALL)`);
    }
  } finally {
    await client.end();
  }
  return {
    name,
    async drop() {
      const c = new pg.Client({ connectionString: directUrl });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA ${name} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** DB_POOL_MAX of the harness's app. */
export const HARNESS_POOL_MAX = 4;

export interface Harness {
  app: Express;
  db: Database;
  schema: string;
  database: AppDatabase;
  /** what /admin/pooler/ reads: the harness pooler's console, unless HarnessOptions say otherwise */
  poolerMonitor: PoolerMonitor;
  /** SQL on the test's schema over the direct URL, for arranging and asserting */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Another app on the same database (another server process, a fresh rate limiter), with its
   *  own session store: express-session ties cookie settings to the store. */
  newApp(overrides?: Partial<AppSettings>, logger?: Logger): Express;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** what /admin/pooler/ watches, e.g. another pooler, whose pools the test alone uses */
  poolerMonitor?: PoolerMonitorOptions;
  /** the database to use instead of the shared one, e.g. a private PostgreSQL the test restarts */
  database?: AppDatabase;
  /** DB_QUERY_TIMEOUT of the harness's app (seconds); the app's default unless given */
  dbQueryTimeout?: number;
}

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const database = options.database ?? (await appDatabase());
  const schema = await createSchema(database.directUrl);
  const db = connectDatabase({
    databaseUrl: database.url,
    databaseSchema: schema.name,
    dbPoolMax: HARNESS_POOL_MAX,
    dbQueryTimeout: options.dbQueryTimeout ?? DEFAULT_DB_QUERY_TIMEOUT,
  });
  const poolerMonitor = new PoolerMonitor(
    options.poolerMonitor ?? { adminUrl: poolerConsoleUrl(database.url) },
  );
  const stores: SessionStore[] = [];
  const newApp = (overrides: Partial<AppSettings> = {}, logger?: Logger) => {
    const sessionStore = createSessionStore(db.sessionPool, schema.name);
    stores.push(sessionStore);
    return createApp({
      config: { ...settings, ...overrides },
      prisma: db.prisma,
      sessionStore,
      poolerMonitor,
      logger,
    });
  };
  const direct = new pg.Pool({ connectionString: database.directUrl, max: 2 });
  // An idle connection ended by a server restart must not crash the test run.
  direct.on("error", () => {});
  return {
    app: newApp(),
    db,
    schema: schema.name,
    database,
    poolerMonitor,
    newApp,
    async sql(text, values) {
      const client = await direct.connect();
      try {
        await client.query(`SET search_path TO ${schema.name}`);
        return (await client.query(text, values)).rows;
      } finally {
        await client.query("RESET search_path");
        client.release();
      }
    },
    async close() {
      await poolerMonitor.close();
      for (const store of stores) await store.close();
      await db.close();
      await direct.end();
      await schema.drop();
      await database.close();
    },
  };
}

export interface UserSpec {
  username?: string;
  password?: string;
  email?: string;
  isStaff?: boolean;
  isSuperuser?: boolean;
  isActive?: boolean;
}

let serial = 0;
export function unique(prefix: string): string {
  serial += 1;
  return `${prefix}-${process.pid}-${serial}`;
}

export const PASSWORD = "correct horse battery staple";

export async function createUser(h: Harness, spec: UserSpec = {}): Promise<User> {
  return h.db.prisma.user.create({
    data: {
      username: spec.username ?? unique("user"),
      email: spec.email ?? "",
      password: await hashPassword(spec.password ?? PASSWORD, { N: TEST_SCRYPT_N }),
      isStaff: spec.isStaff ?? true,
      isSuperuser: spec.isSuperuser ?? true,
      isActive: spec.isActive ?? true,
    },
  });
}

export function csrfFrom(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no CSRF token in page:\n${html.slice(0, 500)}`);
  return match[1]!;
}

export type Agent = ReturnType<typeof request.agent>;

/** The Set-Cookie value of the session cookie, or undefined. */
export function sessionCookie(res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = (res.headers["set-cookie"] as string[] | undefined) ?? [];
  return cookies.find((c) => c.startsWith("sessionid="))?.split(";")[0];
}

/**
 * Logs in through the login form; returns the agent (cookies kept), its CSRF token and its session
 * cookie (`sessionid=…`).
 */
export async function logIn(
  app: Express,
  username: string,
  password = PASSWORD,
): Promise<{ agent: Agent; csrf: string; session: string }> {
  const agent = request.agent(app);
  const page = await agent.get("/admin/login/").expect(200);
  const res = await agent
    .post("/admin/login/")
    .type("form")
    .send({ _csrf: csrfFrom(page.text), username, password, next: "/admin/" })
    .expect(302)
    .expect("Location", "/admin/");
  const index = await agent.get("/admin/").expect(200);
  return { agent, csrf: csrfFrom(index.text), session: sessionCookie(res)! };
}

/** Text of a page without tags and with entities decoded the way the tests need. */
export function textOf(html: string): string {
  return html
    .replace(/<[^>]+>/g, " ")
    .replace(/&#34;|&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");
}

/** "ａｄｍｉｎ" for "admin": the fullwidth forms of ASCII, which NFKC turns back into ASCII. */
export function fullwidth(ascii: string): string {
  return ascii.replace(/[!-~]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0));
}
