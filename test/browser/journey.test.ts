// The reader's journey in a real browser (headless Debian Chromium) against the real server:
// log in, add a post, see it on /, edit it, delete it through the confirmation page, log out.
// Screenshots are kept in test-results/ as artifacts.
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, BrowserContextOptions, Page } from "playwright-core";
import { startServer, type RunningServer } from "../../app/server.ts";
import { appDatabase, type AppDatabase } from "../support/database.ts";
import { createSchema } from "../app/support.ts";
import { djangoDateTime } from "../../app/date-format.ts";
import type { DashboardData } from "../../app/pooler/samples.ts";
import {
  ARTIFACTS,
  createSuperuserByCommand,
  launchChromium,
  logInOnPage,
  serverEnv,
  watchProblems,
} from "./support.ts";

const USERNAME = "reader";
const PASSWORD = "violet-tugboat-91";

let database: AppDatabase;
let schema: Awaited<ReturnType<typeof createSchema>>;
let server: RunningServer;
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
  database = await appDatabase();
  schema = await createSchema(database.directUrl);
  const env = serverEnv(database.url, schema.name);
  server = await startServer(env);
  await createSuperuserByCommand(env, USERNAME, PASSWORD);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await schema?.drop();
  await database?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `journey-${name}.png`), fullPage: true });
}

/** Runs `steps` in a fresh browser context that must see no page errors; a screenshot if it fails. */
async function inNewContext(
  failureShot: string,
  steps: (page: Page, context: BrowserContext) => Promise<void>,
  options: BrowserContextOptions = {},
): Promise<void> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const problems = watchProblems(page);
  try {
    await steps(page, context);
    expect(problems).toEqual([]);
  } catch (err) {
    await shot(page, failureShot).catch(() => undefined);
    throw err;
  } finally {
    await context.close();
  }
}

/** Fills in the login form shown and sends it (the screenshot, if named, of the filled form). */
async function submitLogin(page: Page, filledShot?: string, landing = "Site administration"): Promise<void> {
  await logInOnPage(page, USERNAME, PASSWORD, landing, filledShot ? () => shot(page, filledShot) : undefined);
}

it("log in, add a post, read it on /, edit it, delete it, log out", async () => {
  await inNewContext("failure", async (page) => {
    const message = page.locator(".messagelist li");
    // The admin sends an anonymous visitor to its login page.
    await page.goto(`${server.url}admin/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe("/admin/login/");
    await submitLogin(page, "login");

    // Add a post.
    await page.getByRole("link", { name: "Add", exact: true }).click();
    await page.getByLabel("Title").fill("Hello from the browser");
    await page.getByLabel("Content").fill("Browser → Express → pooler → PostgreSQL 13.\nSecond line.");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await expect
      .poll(() => message.textContent())
      .toBe("The post “Hello from the browser” was added successfully.");
    // the message links the title too
    const rows = page.locator("#result_list");
    await rows.getByRole("link", { name: "Hello from the browser" }).waitFor();
    // admin.js: the select-all box and its counter, as Django's actions.js.
    await page.getByRole("checkbox", { name: "Select all objects on this page for an action" }).check();
    await expect.poll(() => page.locator(".action-counter").textContent()).toBe("1 of 1 selected");
    await shot(page, "changelist");

    // The reader's page lists it; the post's own page shows it.
    await page.getByRole("link", { name: "View site" }).click();
    await page.getByRole("heading", { name: "Post List" }).waitFor();
    await shot(page, "post-list");
    await page.getByRole("link", { name: "Hello from the browser" }).click();
    await page.getByRole("heading", { name: "Hello from the browser" }).waitFor();
    expect(await page.locator(".content").textContent()).toContain("Second line.");
    await shot(page, "post-detail");

    // Edit it.
    await page.goto(`${server.url}admin/core/post/`);
    await page.getByRole("link", { name: "Hello from the browser" }).click();
    await page.getByLabel("Title").fill("Hello again");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await expect.poll(() => message.textContent()).toBe("The post “Hello again” was changed successfully.");

    // Delete it through the confirmation page.
    await rows.getByRole("link", { name: "Hello again" }).click();
    await page.getByRole("link", { name: "Delete" }).click();
    await page.getByRole("heading", { name: "Delete", exact: true }).waitFor();
    await shot(page, "delete-confirmation");
    await page.getByRole("button", { name: "Yes, I’m sure" }).click();
    await expect.poll(() => message.textContent()).toBe("The post “Hello again” was deleted successfully.");
    await page.goto(server.url);
    await page.getByText("No posts yet.").waitFor();

    // Log out (a POST, from the user tools).
    await page.goto(`${server.url}admin/`);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Logged out" }).waitFor();
    await shot(page, "logged-out");
    await page.goto(`${server.url}admin/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe("/admin/login/");
  });
}, 120_000);

it("selects every post of a search across its pages, deletes them through the confirmation page", async () => {
  await sql(
    `INSERT INTO ${schema.name}.core_post (title, content, updated_at)
     SELECT 'Across ' || g, 'x', now() FROM generate_series(1, 101) g`,
  );
  await inNewContext("failure-select-across", async (page) => {
    await page.goto(`${server.url}admin/core/post/?q=across`);
    await submitLogin(page, undefined, "Select post to change");
    const actions = page.locator(".actions");
    await page.getByRole("checkbox", { name: "Select all objects on this page for an action" }).check();
    await expect.poll(() => actions.locator(".action-counter").textContent()).toBe("100 of 100 selected");
    await page.getByRole("button", { name: "Select all 101 posts" }).click();
    await actions.getByText("All 101 selected").waitFor();
    expect(await actions.locator(".action-counter").isVisible()).toBe(false);
    await shot(page, "select-across");
    await page.getByLabel("Action:").selectOption({ label: "Delete selected posts" });
    await page.getByRole("button", { name: "Go" }).click();
    await page.getByRole("heading", { name: "Delete multiple objects" }).waitFor();
    expect(await page.getByText("Posts: 101").count()).toBe(1);
    await page.getByRole("button", { name: "Yes, I’m sure" }).click();
    await expect
      .poll(() => page.locator(".messagelist li").textContent())
      .toBe("Successfully deleted 101 posts.");
  });
}, 120_000);

/** SQL on the direct URL, for arranging and asserting. */
async function sql(text: string): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: database.directUrl });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** The ids of the session rows the server has stored. */
async function sessionIds(): Promise<string[]> {
  return (await sql(`SELECT sid FROM ${schema.name}.session ORDER BY sid`)).map((row) => row.sid as string);
}

it("logs in from a login page left open for hours, which stored nothing on the server, and again after logging out", async () => {
  await inNewContext("failure-login-left-open", async (page, context) => {
    const rowsBefore = await sessionIds();
    await page.goto(`${server.url}admin/login/`);
    const cookies = await context.cookies();
    expect(cookies.map((c) => c.name)).toEqual(["csrftoken"]);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: "Lax" });
    expect(cookies[0]!.expires * 1000 - Date.now()).toBeGreaterThan(363 * 24 * 3600 * 1000);
    expect(await sessionIds()).toEqual(rowsBefore);

    // Three hours later, the browser has dropped every cookie that did not last that long.
    const later = Date.now() / 1000 + 3 * 3600;
    const kept = cookies.filter((c) => c.expires === -1 || c.expires > later);
    await context.clearCookies();
    await context.addCookies(kept);
    await submitLogin(page);

    // Logged out, the browser keeps the cookie of the login it left; the next login page replaces it.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("link", { name: "Log in again" }).click();
    await submitLogin(page);
  });
}, 120_000);

describe("the admin's keyboard and look, as Django's", () => {
  it("has a 'Skip to main content' link, off screen until focused, that moves focus to the content", async () => {
    await inNewContext("failure-skip-link", async (page) => {
      for (const url of ["admin/login/", "admin/"]) {
        await page.goto(`${server.url}${url}`);
        if (url === "admin/login/") await submitLogin(page);
        const skip = page.getByRole("link", { name: "Skip to main content" });
        expect(await skip.count()).toBe(1);
        // Django's .skip-to-content-link: placed far above the page until it has the focus
        expect((await skip.boundingBox())!.y).toBeLessThan(0);
        await page.keyboard.press("Tab");
        expect(await skip.evaluate((link) => link === document.activeElement)).toBe(true);
        expect((await skip.boundingBox())!.y).toBeGreaterThanOrEqual(0);
        await page.keyboard.press("Enter");
        await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("content-start");
        expect(new URL(page.url()).hash).toBe("#content-start");
      }
    });
  }, 120_000);

  it("ticks or clears the range between the last box clicked and a shift-clicked one, as Django's actions.js", async () => {
    await sql(
      `INSERT INTO ${schema.name}.core_post (title, content, updated_at)
       SELECT 'Range ' || g, 'x', now() FROM generate_series(1, 5) g`,
    );
    await inNewContext("failure-shift-click", async (page) => {
      await page.goto(`${server.url}admin/core/post/?q=range`);
      await submitLogin(page, undefined, "Select post to change");
      const boxes = page.locator("input.action-select");
      const ticked = () =>
        boxes.evaluateAll((all) => all.map((box) => Number((box as HTMLInputElement).checked)));
      const counter = () => page.locator(".action-counter").textContent();
      await boxes.nth(1).click();
      await boxes.nth(3).click({ modifiers: ["Shift"] });
      expect(await ticked()).toEqual([0, 1, 1, 1, 0]);
      expect(await counter()).toBe("3 of 5 selected");
      // Django's tr.selected: a ticked row is highlighted
      const highlighted = await page
        .locator("#result_list tbody tr")
        .evaluateAll((rows) => rows.map((row) => Number(row.classList.contains("selected"))));
      expect(highlighted).toEqual([0, 1, 1, 1, 0]);
      expect(
        await page
          .locator("#result_list tbody tr.selected")
          .first()
          .evaluate((row) => getComputedStyle(row).backgroundColor),
      ).toBe("rgb(255, 255, 204)");
      // upwards, and clearing: from the last box clicked (3) to this one
      await boxes.nth(2).click({ modifiers: ["Shift"] });
      expect(await ticked()).toEqual([0, 1, 0, 0, 0]);
      expect(await counter()).toBe("1 of 5 selected");
      // a plain click is one box
      await boxes.nth(4).click();
      expect(await ticked()).toEqual([0, 1, 0, 0, 1]);
      expect(await counter()).toBe("2 of 5 selected");
    });
  }, 120_000);

  it("counts the boxes the browser ticks again on going back to the changelist, as Django's actions.js", async () => {
    await sql(
      `INSERT INTO ${schema.name}.core_post (title, content, updated_at)
       SELECT 'Back ' || g, 'x', now() FROM generate_series(1, 3) g`,
    );
    await inNewContext("failure-back-counter", async (page) => {
      await page.goto(`${server.url}admin/core/post/?q=back`);
      await submitLogin(page, undefined, "Select post to change");
      const boxes = page.locator("input.action-select");
      await boxes.nth(0).click();
      await boxes.nth(2).click();
      await page.getByRole("link", { name: "Add post" }).click();
      await page.getByRole("heading", { name: "Add post" }).waitFor();
      await page.goBack();
      await page.getByRole("heading", { name: "Select post to change" }).waitFor();
      const ticked = await boxes.evaluateAll(
        (all) => all.filter((box) => (box as HTMLInputElement).checked).length,
      );
      expect(`${await page.locator(".action-counter").textContent()} (${ticked} ticked)`).toBe(
        `${ticked} of 3 selected (${ticked} ticked)`,
      );
      expect(ticked).toBe(2);
    });
  }, 120_000);

  it("puts the cursor in the add form's first field, not the change form's, as Django's change_form.js", async () => {
    await inNewContext("failure-add-focus", async (page) => {
      const focused = () => page.evaluate(() => document.activeElement?.id);
      await page.goto(`${server.url}admin/core/post/add/`);
      await submitLogin(page, undefined, "Add post");
      await expect.poll(focused).toBe("id_title");
      await page.getByLabel("Title").fill("Focus");
      await page.getByLabel("Content").fill("x");
      await page.getByRole("button", { name: "Save and add another" }).click();
      await page.locator(".messagelist li").waitFor();
      // autofocus takes effect at the page's next rendering
      await expect.poll(focused).toBe("id_title");
      await page.goto(`${server.url}admin/core/post/?q=focus`);
      await page.getByRole("link", { name: "Focus" }).click();
      await page.getByRole("heading", { name: "Change post" }).waitFor();
      expect(await focused()).not.toBe("id_title");
    });
  }, 120_000);

  it("goes back as the user left the page on 'No, take me back', as Django's cancel.js; to the post in a tab without history", async () => {
    const [row] = await sql(
      `INSERT INTO ${schema.name}.core_post (title, content, updated_at) VALUES ('Back out', 'x', now()) RETURNING id`,
    );
    await inNewContext("failure-cancel-link", async (page) => {
      await page.goto(`${server.url}admin/core/post/?q=back+out`);
      await submitLogin(page, undefined, "Select post to change");
      await page.getByRole("checkbox", { name: "Select this object for an action - Back out" }).check();
      await page.getByLabel("Action:").selectOption({ label: "Delete selected posts" });
      await page.getByRole("button", { name: "Go" }).click();
      await page.getByRole("heading", { name: "Delete multiple objects" }).waitFor();
      await page.getByRole("link", { name: "No, take me back" }).click();
      await page.getByRole("heading", { name: "Select post to change" }).waitFor();
      // the same page again, with the post still ticked
      await expect.poll(() => page.locator(".action-counter").textContent()).toBe("1 of 1 selected");

      await page.getByRole("link", { name: "Back out" }).click();
      await page.getByRole("heading", { name: "Change post" }).waitFor();
      await page.getByLabel("Content").fill("an edit not saved yet");
      await page.getByRole("link", { name: "Delete" }).click();
      await page.getByRole("heading", { name: "Delete", exact: true }).waitFor();
      await page.getByRole("link", { name: "No, take me back" }).click();
      await page.getByRole("heading", { name: "Change post" }).waitFor();
      await expect.poll(() => page.getByLabel("Content").inputValue()).toBe("an edit not saved yet");
    });
    // Opened on its own (a bookmark, a new tab) there is nothing to go back to: Django's href="#"
    // would do nothing; ours leads to the post.
    await inNewContext("failure-cancel-link-no-history", async (page) => {
      await page.goto(`${server.url}admin/core/post/${String(row!.id)}/delete/`);
      await submitLogin(page, undefined, "Delete");
      const fresh = await page.context().newPage();
      await fresh.goto(`${server.url}admin/core/post/${String(row!.id)}/delete/`);
      await fresh.getByRole("link", { name: "No, take me back" }).click();
      await fresh.getByRole("heading", { name: "Change post" }).waitFor();
    });
  }, 120_000);

  it("shows deleting in red: the change form's Delete link and the confirmations' 'Yes, I'm sure'", async () => {
    const [row] = await sql(
      `INSERT INTO ${schema.name}.core_post (title, content, updated_at) VALUES ('Red', 'x', now()) RETURNING id`,
    );
    await inNewContext("failure-delete-red", async (page) => {
      /** Django's --delete-button-bg, and the grey --close-button-bg of "No, take me back" */
      const RED = "rgb(186, 33, 33)";
      const GREY = "rgb(116, 116, 116)";
      const WHITE = "rgb(255, 255, 255)";
      const colours = (locator: ReturnType<Page["locator"]>) =>
        locator.evaluate((element) => {
          const style = getComputedStyle(element);
          return `${style.backgroundColor} on ${style.color}`;
        });
      await page.goto(`${server.url}admin/core/post/${String(row!.id)}/change/`);
      await submitLogin(page, undefined, "Change post");
      expect(await colours(page.getByRole("link", { name: "Delete" }))).toBe(`${RED} on ${WHITE}`);
      await page.getByRole("link", { name: "Delete" }).click();
      await page.getByRole("heading", { name: "Delete", exact: true }).waitFor();
      expect(await colours(page.getByRole("button", { name: "Yes, I’m sure" }))).toBe(`${RED} on ${WHITE}`);
      expect(await colours(page.getByRole("link", { name: "No, take me back" }))).toBe(`${GREY} on ${WHITE}`);

      await page.goto(`${server.url}admin/core/post/?q=red`);
      await page.getByRole("checkbox", { name: "Select all objects on this page for an action" }).check();
      await page.getByLabel("Action:").selectOption({ label: "Delete selected posts" });
      await page.getByRole("button", { name: "Go" }).click();
      await page.getByRole("heading", { name: "Delete multiple objects" }).waitFor();
      expect(await colours(page.getByRole("button", { name: "Yes, I’m sure" }))).toBe(`${RED} on ${WHITE}`);
      expect(await colours(page.getByRole("link", { name: "No, take me back" }))).toBe(`${GREY} on ${WHITE}`);
    });
  }, 120_000);

  it("shows the pooler's sample times in UTC, as the rest of the admin, whatever the browser's time zone", async () => {
    await inNewContext(
      "failure-pooler-utc",
      async (page) => {
        // Keeps the charts pooler.js makes, to ask them how they write a time.
        await page.addInitScript(() => {
          const w = window as unknown as { uPlot?: unknown; plots: unknown[] };
          w.plots = [];
          let real: unknown;
          Object.defineProperty(window, "uPlot", {
            configurable: true,
            get: () => real,
            set: (value: object) => {
              real = new Proxy(value, {
                construct: (target, args) => {
                  const plot = Reflect.construct(target as never, args) as object;
                  w.plots.push(plot);
                  return plot;
                },
              });
            },
          });
        });
        let latest: DashboardData | undefined;
        page.on("response", (res) => {
          if (res.url().endsWith("/admin/pooler/data.json")) void res.json().then((d) => (latest = d));
        });
        await page.goto(`${server.url}admin/pooler/`);
        await submitLogin(page, undefined, "Pooler");
        const status = page.locator("#pooler-status");
        await expect
          .poll(async () => {
            const text = (await status.textContent()) ?? "";
            return (
              latest?.sampledAt && text.includes(`sampled at ${djangoDateTime(new Date(latest.sampledAt))},`)
            );
          })
          .toBe(true);
        // The charts' time axis too: Kolkata is 5:30 from UTC, so the hour and minute tell.
        const at = new Date(latest!.sampledAt!);
        const written = await page.evaluate((t) => {
          const plots = (
            window as unknown as {
              plots: { series: { value: (u: unknown, v: number, s: number, i: number) => string }[] }[];
            }
          ).plots;
          return plots.length ? plots[0]!.series[0]!.value(plots[0], t, 0, 0) : "no chart";
        }, at.getTime() / 1000);
        const hhmm = `${at.getUTCHours() % 12 || 12}:${String(at.getUTCMinutes()).padStart(2, "0")}`;
        expect(written).toContain(hhmm);
      },
      { timezoneId: "Asia/Kolkata" },
    );
  }, 120_000);
});
