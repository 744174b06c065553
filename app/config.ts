// The app's settings, read once from the environment and checked with zod so that a typo fails at
// start-up with a readable message instead of at the first request.
import { z } from "zod";

const DEV_SESSION_SECRET = "dev-only-session-secret-do-not-use-in-production";

/**
 * Seconds a query of the app may wait for its answer before the request fails (503) and its
 * connection is closed: a paused pooler or a held lock would otherwise hold the request for good.
 * Any value works with the admin's saves: below Prisma's interactive-transaction timeout (5 s) it
 * is the one a save meets, and the save is rolled back and reported just the same.
 */
export const DEFAULT_DB_QUERY_TIMEOUT = 30;

/** OWASP's minimum scrypt cost; tests lower it through PASSWORD_SCRYPT_N to stay fast. */
export const DEFAULT_SCRYPT_N = 2 ** 17;

const flag = z
  .enum(["true", "false", "1", "0", "yes", "no", ""])
  .default("false")
  .transform((v) => v === "true" || v === "1" || v === "yes");

const integer = (min: number, max: number) =>
  z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(z.number().min(min).max(max));

/** The scrypt cost N for new password hashes: a power of two, as scrypt requires. */
export const scryptCostSchema = integer(2 ** 10, 2 ** 20)
  .refine((n) => Number.isInteger(Math.log2(n)), "must be a power of two")
  .default(DEFAULT_SCRYPT_N);

/** Unset, zod's issue has no input: "required", not a complaint about the form of a value never given. */
const postgresUrl = z.url({
  protocol: /^postgres(ql)?$/,
  error: (issue) => (issue.input === undefined ? "required" : "must be a postgresql:// URL"),
});

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  DATABASE_URL: postgresUrl,
  // Prisma's adapter and the session store qualify every table with it: no `SET search_path`,
  // which a transaction-mode pooler would leak to other clients.
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier")
    .default("public"),
  DB_POOL_MAX: integer(1, 100).default(10),
  // 0: no limit, as PgBouncer's query_timeout
  DB_QUERY_TIMEOUT: integer(0, 86_400).default(DEFAULT_DB_QUERY_TIMEOUT),
  PORT: integer(0, 65535).default(8000),
  HOST: z.string().min(1).default("0.0.0.0"),
  SESSION_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // Set when users reach the app over HTTPS, through a TLS-terminating proxy (the app itself speaks
  // plain HTTP): secure cookies, HSTS and upgrade-insecure-requests would break a plain-HTTP demo.
  BEHIND_TLS: flag,
  // Number of reverse proxies in front of the app, so req.ip (the login rate limit's key) and
  // req.secure come from X-Forwarded-*; 0 means trust no proxy header.
  TRUST_PROXY: integer(0, 10).default(0),
  PASSWORD_SCRYPT_N: scryptCostSchema,
  // The pooler's admin console, read by /admin/pooler/; defaults to DATABASE_URL on database "pgbouncer".
  POOLER_ADMIN_URL: postgresUrl.optional(),
  // The pooler's Prometheus endpoint (its METRICS_PORT), for the p99 wait; without it p99 is not shown.
  POOLER_METRICS_URL: z.url({ protocol: /^https?$/, error: "must be an http:// URL" }).optional(),
});

export interface AppConfig {
  production: boolean;
  databaseUrl: string;
  databaseSchema: string;
  dbPoolMax: number;
  /** seconds, 0 for none */
  dbQueryTimeout: number;
  port: number;
  host: string;
  sessionSecret: string;
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  behindTls: boolean;
  trustProxy: number;
  scryptN: number;
  poolerAdminUrl: string;
  poolerMetricsUrl: string | undefined;
}

export class ConfigError extends Error {}

/** Turns zod's issues into one line per variable, e.g. "DATABASE_URL: required". */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(input)"}: ${issue.message}`).join("\n");
}

function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  // An empty variable (e.g. `PORT=` in a compose file) means "use the default".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) throw new ConfigError(`Invalid environment:\n${describeIssues(parsed.error)}`);
  return parsed.data;
}

export type DatabaseConfig = Pick<
  AppConfig,
  "databaseUrl" | "databaseSchema" | "dbPoolMax" | "dbQueryTimeout" | "scryptN"
>;

/** What command-line tools need: the database and the password cost, no web settings. */
export function loadDatabaseConfig(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  const e = parseEnv(
    envSchema.pick({
      DATABASE_URL: true,
      DATABASE_SCHEMA: true,
      DB_POOL_MAX: true,
      DB_QUERY_TIMEOUT: true,
      PASSWORD_SCRYPT_N: true,
    }),
    env,
  );
  return {
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    dbPoolMax: e.DB_POOL_MAX,
    dbQueryTimeout: e.DB_QUERY_TIMEOUT,
    scryptN: e.PASSWORD_SCRYPT_N,
  };
}

/**
 * The pooler's admin console as the app reaches it: DATABASE_URL with the database changed to
 * "pgbouncer", PgBouncer's virtual console database. Works as long as DATABASE_URL's user is in the
 * pooler's admin_users or stats_users (admin_users defaults to that user).
 */
export function poolerConsoleUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = "/pgbouncer";
  return url.toString();
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = console.warn,
): AppConfig {
  const e = parseEnv(envSchema, env);
  const production = e.NODE_ENV === "production";
  if (!e.SESSION_SECRET) {
    if (production) throw new ConfigError("Invalid environment:\nSESSION_SECRET: required in production");
    warn("SESSION_SECRET is not set: using a development secret. Set it before deploying.");
  }
  if (e.BEHIND_TLS && e.TRUST_PROXY === 0) {
    // express-session sends a Secure cookie only on a request it sees as HTTPS (req.secure).
    throw new ConfigError(
      "Invalid environment:\nBEHIND_TLS: needs TRUST_PROXY (the proxies in front of the app, at least 1): " +
        "the app speaks plain HTTP, and without the proxy's X-Forwarded-Proto it would never send the " +
        "secure session cookie, so nobody could log in",
    );
  }
  return {
    ...loadDatabaseConfig(env),
    production,
    port: e.PORT,
    host: e.HOST,
    sessionSecret: e.SESSION_SECRET ?? DEV_SESSION_SECRET,
    logLevel: e.LOG_LEVEL,
    behindTls: e.BEHIND_TLS,
    trustProxy: e.TRUST_PROXY,
    poolerAdminUrl: e.POOLER_ADMIN_URL ?? poolerConsoleUrl(e.DATABASE_URL),
    poolerMetricsUrl: e.POOLER_METRICS_URL,
  };
}
