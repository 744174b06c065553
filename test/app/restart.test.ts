// The web app while PostgreSQL restarts under it (fast, then immediate): posts keep being added
// through the pooler, and every answer is either a saved post or a clear "not saved" page that
// keeps what was typed. Counting rows against acknowledgements shows nothing acknowledged is lost.
import nodePostgres from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { startTestPooler } from "../support/pooler.ts";
import { waitFor } from "../support/wait.ts";
import { createHarness, createUser, logIn, textOf, type Agent, type Harness } from "./support.ts";

const CHANGELIST = "/admin/core/post/";
const MAYBE = "may or may not have been saved";
/** Browsers, each with a session of its own, adding posts one after another. */
const WRITERS = 4;

let pg: PrivatePostgres;
let h: Harness;
let writers: Writer[];

beforeAll(async () => {
  pg = await startPrivatePostgres({ appDatabase: true });
  // Clients wait for a restarting server at most server_login_retry, and are refused after it: a
  // second, so that the longer outage below surely ends in refusals, the pages this test checks.
  const pooler = await startTestPooler({
    DATABASE_URL: pg.url("app"),
    DEFAULT_POOL_SIZE: "5",
    SERVER_LOGIN_RETRY: "1",
  });
  h = await createHarness({
    database: { url: pooler.url("app"), directUrl: pg.url("app"), close: pooler.stop },
  });
  const user = await createUser(h);
  writers = await Promise.all(Array.from({ length: WRITERS }, () => logIn(h.app, user.username)));
}, 60_000);

afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

interface Writer {
  agent: Agent;
  csrf: string;
}

interface Outcome {
  writer: Writer;
  title: string;
  content: string;
  status: number;
  location?: string;
  html: string;
  /** when the answer came (Date.now()) */
  at: number;
}

let serial = 0;
async function addPost(writer: Writer): Promise<Outcome> {
  const { agent, csrf } = writer;
  serial += 1;
  const title = `restart <${serial}> & “more”`;
  const content = `line one of ${serial}\nline two`;
  const res = await agent
    .post("/admin/core/post/add/")
    .type("form")
    .send({ _csrf: csrf, title, content, _save: "Save" });
  return {
    writer,
    title,
    content,
    status: res.status,
    location: res.headers.location,
    html: res.text,
    at: Date.now(),
  };
}

const acknowledged = (o: Outcome) => o.status === 302 && o.location === CHANGELIST;

const unescapeHtml = (s: string) =>
  s.replace(/&#34;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** The named inputs and textareas in `html`, values decoded: what a browser would send. */
function formFields(html: string): [string, string][] {
  const found = html.matchAll(
    /<input [^>]*name="([^"]+)"(?: id="[^"]*")? value="([^"]*)"|<textarea name="([^"]+)"[^>]*>\n?([^<]*)<\/textarea>/g,
  );
  return [...found].map((m): [string, string] => [m[1] ?? m[3]!, unescapeHtml(m[2] ?? m[4]!)]);
}

/** The error page's "Send again" form. */
function resendForm(html: string): { action: string; fields: [string, string][] } | undefined {
  const form = /<form method="post" action="([^"]+)" class="resend">([\s\S]*?)<\/form>/.exec(html);
  return form ? { action: unescapeHtml(form[1]!), fields: formFields(form[2]!) } : undefined;
}

/** Whether the page has a form field `name` holding `value`. */
const keeps = (html: string, name: string, value: string): boolean =>
  formFields(html).some(([n, v]) => n === name && v === value);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("adding posts while PostgreSQL restarts", () => {
  it("saves each post or says it did not, keeping the form; nothing acknowledged is lost or doubled", async () => {
    const outcomes: Outcome[] = [];
    let running = true;
    const loops = writers.map(async (writer) => {
      while (running) {
        const outcome = await addPost(writer);
        outcomes.push(outcome);
        // While the database is down the answers come at once: no need to spin.
        if (!acknowledged(outcome)) await sleep(20);
      }
    });
    await sleep(500);
    await pg.restart("fast", 1000);
    await sleep(1500);
    await pg.restart("immediate", 3000);
    const upAt = Date.now();
    // Recovered: posts are saved again within a few seconds of PostgreSQL being back.
    const savedAgain = () => outcomes.find((o) => o.at > upAt && acknowledged(o));
    try {
      await waitFor(() => savedAgain() !== undefined, "a post saved after the restart", 10_000);
      await sleep(300);
    } finally {
      running = false;
      await Promise.all(loops);
    }
    const recoveryMs = savedAgain()!.at - upAt;

    const successes = outcomes.filter(acknowledged);
    const errors = outcomes.filter((o) => !acknowledged(o));
    const resendPages = errors.filter((o) => resendForm(o.html) !== undefined);
    // A connection lost during COMMIT leaves the outcome unknown, and the page says so.
    const unknown = new Set(errors.filter((o) => textOf(o.html).includes(MAYBE)).map((o) => o.title));
    const rows = await h.sql<{ title: string }>("SELECT title FROM core_post");
    const saved = new Map<string, number>();
    for (const { title } of rows) saved.set(title, (saved.get(title) ?? 0) + 1);
    const unknownSaved = [...unknown].filter((title) => saved.has(title)).length;
    console.log(
      `restart: ${outcomes.length} posts attempted, ${successes.length} acknowledged, ${errors.length} errors ` +
        `(${errors.length - resendPages.length} add forms re-rendered, ${resendPages.length} "send again" pages; ` +
        `${unknown.size} with the outcome unknown, ${unknownSaved} of those saved), ${rows.length} rows found; ` +
        `saved again ${recoveryMs} ms after PostgreSQL was back`,
    );
    expect(successes.length).toBeGreaterThan(0);
    expect(errors.length, "the restarts were felt").toBeGreaterThan(0);
    for (const error of errors) {
      const text = textOf(error.html);
      expect(error.status, text.slice(0, 300)).toBe(503);
      expect(text).toMatch(/NOT saved|nothing was saved|may or may not have been saved/);
      expect(text).toMatch(/again/);
      expect(keeps(error.html, "title", error.title), error.html).toBe(true);
      expect(keeps(error.html, "content", error.content), error.html).toBe(true);
    }
    for (const { title } of successes) expect(saved.get(title), title).toBe(1);
    for (const [title, count] of saved) {
      expect(count, `${title} saved once`).toBe(1);
    }
    // Every row is an acknowledged post, or one whose page said it may have been saved.
    expect(rows.length).toBe(successes.length + unknownSaved);

    // What a "send again" page kept is enough to save the post once the database is back.
    const kept = resendPages.find((o) => !saved.has(o.title));
    expect(kept, "a session-store outage answered with a send-again page").toBeDefined();
    const form = resendForm(kept!.html)!;
    const res = await kept!.writer.agent
      .post(form.action)
      .type("form")
      .send(new URLSearchParams(form.fields).toString());
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(CHANGELIST);
    const again = await h.sql("SELECT content FROM core_post WHERE title = $1", [kept!.title]);
    expect(again).toEqual([{ content: kept!.content }]);
  }, 60_000);
});

describe("changing a post while PostgreSQL stops", () => {
  it("keeps the change in the form (503), saves nothing of it, and saves it when sent again", async () => {
    const { agent } = writers[0]!;
    const added = await addPost(writers[0]!);
    expect(acknowledged(added)).toBe(true);
    const [{ id }] = (await h.sql<{ id: number }>("SELECT id FROM core_post WHERE title = $1", [
      added.title,
    ])) as [{ id: number }];
    const page = `/admin/core/post/${id}/change/`;
    const before = await h.sql<{ title: string; content: string }>(
      "SELECT title, content FROM core_post WHERE id = $1",
      [id],
    );
    const opened = formFields((await agent.get(page).expect(200)).text);
    const change = {
      title: `changed <${id}> & “more”`,
      content: "changed\nwhile down",
    };
    const fields = opened.map(([n, v]): [string, string] => [
      n,
      n === "title" || n === "content" ? change[n] : v,
    ]);
    // Async, as a supertest request goes out only once awaited; each field once, as the page's
    // other forms (log out) carry the CSRF token too.
    const send = async (form: [string, string][]) =>
      agent
        .post(page)
        .type("form")
        .send(new URLSearchParams([...new Map(form), ["_save", "Save"]]).toString());

    // A row lock holds the save's UPDATE after the session, the user and the post were read: the
    // stop then surely falls inside the handler, whose form keeps the text.
    const locker = new nodePostgres.Client({ connectionString: pg.url("app") });
    locker.on("error", () => {});
    await locker.connect();
    let unsaved, resent, downFor;
    try {
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM ${h.schema}.core_post WHERE id = $1 FOR UPDATE`, [id]);
      const saving = send(fields);
      const waiting =
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%'";
      await waitFor(
        // not on the locker: pg_stat_activity stays as first read within a transaction
        async () => (await h.sql<{ n: number }>(waiting))[0]!.n > 0,
        "the save waiting for the row lock",
      );
      const stopAt = Date.now();
      // immediate: in a fast stop the locker's backend may exit first and release the row, and the
      // waiting UPDATE may finish before its own backend is told to stop, so that the stop hits the
      // COMMIT instead (then "may or may not have been saved" is the right answer, not this test's)
      const back = pg.restart("immediate", 3000);
      unsaved = await saving;
      // Still down: a logged-in session cannot be read, so the error page keeps what was sent.
      resent = await send(fields);
      downFor = Date.now() - stopAt;
      await back;
    } finally {
      await locker.end().catch(() => {});
    }
    console.log(
      `change while PostgreSQL stops: form page ${unsaved.status}, send-again page ${resent.status}, ` +
        `both answered ${downFor} ms after the stop began`,
    );

    expect(unsaved.status, textOf(unsaved.text).slice(0, 300)).toBe(503);
    expect(textOf(unsaved.text)).toContain("this post was NOT saved");
    expect(resendForm(unsaved.text), "the change form itself, not the error page").toBeUndefined();
    expect(textOf(unsaved.text)).toMatch(/Posts\s*›\s*Change post/);
    expect(keeps(unsaved.text, "title", change.title)).toBe(true);
    expect(keeps(unsaved.text, "content", change.content)).toBe(true);

    expect(resent.status).toBe(503);
    expect(textOf(resent.text)).toContain("nothing was saved or changed");
    const again = resendForm(resent.text);
    expect(again?.action).toBe(page);
    expect(again?.fields).toEqual(
      expect.arrayContaining([
        ["title", change.title],
        ["content", change.content],
      ]),
    );

    // Nothing half-saved: the old text, and no change in the admin log.
    expect(await h.sql("SELECT title, content FROM core_post WHERE id = $1", [id])).toEqual(before);
    const logged = "SELECT count(*)::int AS n FROM django_admin_log WHERE object_id = $1 AND action_flag = 2";
    expect(await h.sql(logged, [String(id)])).toEqual([{ n: 0 }]);

    // The form the 503 page kept saves the change once PostgreSQL is back.
    await waitFor(async () => (await agent.get(page)).status === 200, "the change page again", 10_000);
    const saved = await send(formFields(unsaved.text));
    expect(saved.status, textOf(saved.text).slice(0, 300)).toBe(302);
    expect(saved.headers.location).toBe(CHANGELIST);
    expect(await h.sql("SELECT title, content FROM core_post WHERE id = $1", [id])).toEqual([change]);
    expect(await h.sql(logged, [String(id)])).toEqual([{ n: 1 }]);
  }, 60_000);
});
