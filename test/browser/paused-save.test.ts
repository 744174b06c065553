// An admin save in a real browser while the pooler is PAUSEd, with DB_QUERY_TIMEOUT=2: the page
// says nothing was saved and keeps the text, and "Send again" after RESUME saves the post once.
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import type { Browser } from "playwright-core";
import { startServer, type RunningServer } from "../../app/server.ts";
import { createSchema } from "../app/support.ts";
import { connect } from "../support/clients.ts";
import { startTestPooler, type TestPooler } from "../support/pooler.ts";
import { ARTIFACTS, createSuperuserByCommand, launchChromium, logInOnPage, serverEnv } from "./support.ts";

const USERNAME = "pauser";
const PASSWORD = "copper-kettle-17";

let pooler: TestPooler;
let schema: Awaited<ReturnType<typeof createSchema>>;
let server: RunningServer;
let browser: Browser;
let admin: pg.Client;
let direct: pg.Client;

beforeAll(async () => {
  browser = await launchChromium();
  pooler = await startTestPooler();
  schema = await createSchema(inject("pgAppUrl"));
  const env = serverEnv(pooler.url("app"), schema.name, { DB_QUERY_TIMEOUT: "2" });
  server = await startServer(env);
  await createSuperuserByCommand(env, USERNAME, PASSWORD);
  admin = await connect(pooler.url("pgbouncer"));
  direct = await connect(inject("pgAppUrl"));
}, 120_000);

afterAll(async () => {
  await admin?.query("RESUME").catch(() => undefined);
  await admin?.end();
  await direct?.end();
  await browser?.close();
  await server?.close();
  await pooler?.stop();
  await schema?.drop();
});

async function titles(): Promise<string[]> {
  const { rows } = await direct.query(`SELECT title FROM ${schema.name}.core_post ORDER BY id`);
  return rows.map((r) => r.title as string);
}

it("a post added while the pooler is paused: a 503 keeping the text, saved once after RESUME", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}admin/login/`);
    await logInOnPage(page, USERNAME, PASSWORD, "Site administration");
    await page.goto(`${server.url}admin/core/post/add/`);
    await page.getByLabel("Title").fill("Typed while paused");
    await page.getByLabel("Content").fill("A long text\nof two lines.");
    await admin.query("PAUSE");
    const response = page.waitForResponse((r) => r.request().method() === "POST");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    expect((await response).status()).toBe(503);
    await page.screenshot({ path: path.join(ARTIFACTS, "paused-save.png"), fullPage: true });
    // only the session lookup was sent, so the page can say that nothing was saved
    await page.getByText("The database took too long to answer, so nothing was saved or changed.").waitFor();
    expect(await page.getByLabel("content").inputValue()).toBe("A long text\nof two lines.");
    await admin.query("RESUME");
    expect(await titles()).toEqual([]);
    await page.getByRole("button", { name: "Send again" }).click();
    await page.getByText("The post “Typed while paused” was added successfully.").waitFor();
    expect(await titles()).toEqual(["Typed while paused"]);
  } finally {
    await context.close();
  }
}, 120_000);
