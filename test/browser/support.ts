// What the browser tests share: headless Debian Chromium, the real server's environment, the first
// superuser made by the createsuperuser command (as in the tutorial), its login form filled in, and a
// watch for page errors.
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { chromium, type Browser, type Page } from "playwright-core";
import { connectDatabase } from "../../app/db.ts";
import { DEFAULT_DB_QUERY_TIMEOUT } from "../../app/config.ts";
import { createSuperuser } from "../../app/cli/createsuperuser.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Screenshots, kept by CI as artifacts. */
export const ARTIFACTS = path.resolve("test-results");

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` ` +
        "(or point CHROMIUM_PATH at a Chromium binary).",
    );
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** startServer()'s environment for a test: a free port on loopback, quiet, cheap password hashes. */
export function serverEnv(databaseUrl: string, schema: string, extra: Record<string, string> = {}) {
  return {
    NODE_ENV: "test",
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: schema,
    DB_POOL_MAX: "4",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "silent",
    SESSION_SECRET: "browser-test-session-secret-0123456789",
    PASSWORD_SCRYPT_N: "1024",
    ...extra,
  };
}

/** `createsuperuser --no-input`, with the password from DJANGO_SUPERUSER_PASSWORD as Django reads it. */
export async function createSuperuserByCommand(
  env: ReturnType<typeof serverEnv>,
  username: string,
  password: string,
): Promise<void> {
  const db = connectDatabase({
    databaseUrl: env.DATABASE_URL,
    databaseSchema: env.DATABASE_SCHEMA,
    dbPoolMax: 1,
    dbQueryTimeout: DEFAULT_DB_QUERY_TIMEOUT,
  });
  try {
    const io = {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      interactive: false,
    };
    const code = await createSuperuser(
      db.prisma,
      io,
      ["--no-input", "--username", username, "--email", "admin@example.com"],
      {
        ...env,
        DJANGO_SUPERUSER_PASSWORD: password,
      },
    );
    if (code !== 0) throw new Error(`createsuperuser exited with ${code}`);
  } finally {
    await db.close();
  }
}

/** A Content-Security-Policy violation, a script error or a missing file, as they happen. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  return problems;
}

/**
 * Fills in the login form `page` shows and sends it, then waits for the page it lands on (its
 * heading); `filled` runs once the form is filled in (a screenshot of it).
 */
export async function logInOnPage(
  page: Page,
  username: string,
  password: string,
  landing: string,
  filled?: () => Promise<void>,
): Promise<void> {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await filled?.();
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: landing }).waitFor();
}
