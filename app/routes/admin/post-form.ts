// Add and change pages for a post, as Django's ModelAdmin.add_view / change_view: the three save
// buttons, the success messages, and errors shown next to the fields with the input kept.
//
// Two editors can open the same post. The form carries the version (updated_at) it was opened at,
// and a save that finds a newer version holding something else is refused (409) with the editor's
// text still in the form, instead of silently overwriting the other edit (a newer version holding
// the form's own text is no conflict: a second click on Save). A save for a post deleted meanwhile
// (404) offers the text as a new post, and a save while the database is unreachable (503) keeps the
// text in the form, so no edit is ever lost.
import type { Router, Request, Response } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import { Prisma, type Post, type User } from "../../generated/prisma/client.ts";
import { postForm, type PostInput } from "../../forms/post.ts";
import { addError, NON_FIELD, parseForm, type FieldErrors } from "../../forms/fields.ts";
import { parseId } from "../../forms/ids.ts";
import { messages } from "../../messages.ts";
import { MissingObject } from "../../errors.ts";
import {
  needsAdministrator,
  RETRY_AFTER_SECONDS,
  saveFailure,
  transaction,
  type SaveFailure,
} from "../../db-errors.ts";
import { findPost, getPost, missingPost, quoted, urls } from "./post-admin.ts";
import { preserving } from "./preserved-filters.ts";
import { ADDED_MESSAGE, ADDITION, CHANGE, changedMessage, logEntry } from "../../admin-log.ts";

const STALE =
  "This post was changed by someone else after you opened it. Your version is below: save again to replace theirs, or reload the page to see it.";

interface FormPage {
  /** the saved post being changed; absent on the add page */
  post?: Post;
  values?: Record<string, string>;
  errors?: FieldErrors;
  /** the version a change form was opened at */
  version?: string;
  status?: number;
  /** the post being changed when it could not be read (the database is unreachable) */
  id?: number;
}

const UNSAVED: Record<SaveFailure, string> = {
  unreachable:
    "The database could not be reached, so this post was NOT saved. Your text is kept below: please save again in a moment.",
  "outcome unknown":
    "The database went away while this post was being saved: it may or may not have been saved. Your text is kept below: check the list of posts in a moment before saving again.",
  "timed out":
    "Saving took too long (another change may have been holding this post), so it was NOT saved. Your text is kept below: please save again in a moment.",
  // a read outside the save's transaction (the post being changed): the save itself is "timed out"
  "no answer":
    "The database took too long to answer, so this post was NOT saved. Your text is kept below: please save again in a moment.",
  // no lone write saves a post; said as for one all the same
  "write unanswered":
    "The database took too long to answer while this post was being saved: it may or may not have been saved. Your text is kept below: check the list of posts in a moment before saving again.",
  "transactions refused":
    "The database's connection pooler refuses transactions (it runs in statement pooling mode), so this post was NOT saved. Your text is kept below: the site's administrator must switch the pooler to transaction or session pooling.",
};

function renderForm(res: Response, { post, values, errors = {}, version, status = 200, id }: FormPage): void {
  const changing = post?.id ?? id;
  res.status(status).render("admin/change-form", {
    title: changing === undefined ? "Add post" : "Change post",
    // Django's change view: the post as its subtitle
    subtitle: post?.title,
    post,
    action: changing === undefined ? urls.add : urls.change(changing),
    values: values ?? { title: post?.title ?? "", content: post?.content ?? "" },
    errors,
    version: version ?? post?.updatedAt.toISOString(),
  });
}

/** A save cut short by the database (an outage, a timeout): the form again, with the input and why (503). */
function renderUnsaved(res: Response, err: unknown, page: FormPage): void {
  const failure = saveFailure(err);
  if (failure === null) throw err;
  if (needsAdministrator(failure)) res.req.log.error({ err }, "post not saved");
  else res.set("Retry-After", RETRY_AFTER_SECONDS);
  renderForm(res, { ...page, errors: addError({}, NON_FIELD, UNSAVED[failure]), status: 503 });
}

/** Where Django's three buttons lead, and what the message adds to "was added/changed successfully." */
function afterSave(req: Request, res: Response, post: Post, verb: "added" | "changed"): void {
  const done = `The post ${quoted(post.title)} was ${verb} successfully.`;
  // the title, inside the quotes, links to the post's change page
  const start = "The post “".length;
  const link = { start, end: start + post.title.length, url: urls.change(post.id) };
  const preserve = preserving(req);
  if (req.body?._continue !== undefined) {
    messages.success(req, `${done} You may edit it again below.`, link);
    return res.redirect(302, preserve(urls.change(post.id)));
  }
  if (req.body?._addanother !== undefined) {
    messages.success(req, `${done} You may add another post below.`, link);
    return res.redirect(302, preserve(urls.add));
  }
  messages.success(req, done, link);
  res.redirect(302, preserve(urls.changelist));
}

/** Versions the forms carry are updated_at times; anything else (from 1970 to the year 9999) is stale. */
function parseVersion(raw: unknown): Date | undefined {
  if (typeof raw !== "string") return undefined;
  const date = new Date(raw);
  return date.getTime() >= 0 && date.getUTCFullYear() <= 9999 ? date : undefined;
}

export function postFormRoutes({ prisma }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  /** Optimistic update: only if nobody saved the post since `version`; logged with what changed. */
  async function saveIfCurrent(
    user: User,
    current: Post,
    version: Date | undefined,
    data: PostInput,
  ): Promise<Post | undefined> {
    if (!version) return undefined;
    try {
      return await transaction(prisma, async (tx) => {
        // The form's version has milliseconds; updated_at keeps microseconds when a write outside
        // the app (SQL's now()) set it, so the version matches the whole millisecond.
        const sameVersion = { gte: version, lt: new Date(version.getTime() + 1) };
        const saved = await tx.post.update({ where: { id: current.id, updatedAt: sameVersion }, data });
        await tx.adminLog.create({ data: logEntry(user, saved, CHANGE, changedMessage(current, data)) });
        return saved;
      });
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2025") return undefined;
      throw err;
    }
  }

  // Django's get_changeform_initial_data: a link such as add/?title=… opens the form filled in.
  router.get("/add/", (req, res) => {
    const given = (name: string) => (typeof req.query[name] === "string" ? req.query[name] : "");
    renderForm(res, { values: { title: given("title"), content: given("content") } });
  });

  router.post("/add/", async (req, res) => {
    const form = parseForm(postForm, req.body);
    // an invalid form is re-rendered with its errors as a 200, as Django does
    if (!form.ok) return renderForm(res, { values: form.values, errors: form.errors });
    let post: Post;
    try {
      post = await transaction(prisma, async (tx) => {
        const created = await tx.post.create({ data: form.data });
        await tx.adminLog.create({ data: logEntry(req.user!, created, ADDITION, ADDED_MESSAGE) });
        return created;
      });
    } catch (err) {
      return renderUnsaved(res, err, { values: form.values });
    }
    afterSave(req, res, post, "added");
  });

  // Django's old-style object URL still leads to the change page, with RedirectView's default 302
  // (a 301 would be cached by the browser as if the URL were gone for good).
  router.get("/:id/", (req, res) => {
    const id = parseId(req.params.id);
    if (id === undefined) throw new MissingObject(missingPost(req.params.id));
    res.redirect(302, urls.change(id));
  });

  router.get("/:id/change/", async (req, res) => {
    renderForm(res, { post: await getPost(prisma, req.params.id) });
  });

  router.post("/:id/change/", async (req, res) => {
    const form = parseForm(postForm, req.body);
    const lost = () => {
      const errors = addError(form.ok ? {} : form.errors, NON_FIELD, missingPost(req.params.id));
      renderForm(res, { values: form.values, errors, status: 404 });
    };
    const version: unknown = req.body?._version;
    const opened = typeof version === "string" ? version : undefined;
    try {
      const current = await findPost(prisma, req.params.id);
      if (!current) return lost();
      if (!form.ok) {
        return renderForm(res, {
          post: current,
          values: form.values,
          errors: form.errors,
          version: opened,
        });
      }
      const saved = await saveIfCurrent(req.user!, current, parseVersion(opened), form.data);
      if (saved) return afterSave(req, res, saved, "changed");
      // Deleted or changed since it was read above.
      const latest = await prisma.post.findUnique({ where: { id: current.id } });
      if (!latest) return lost();
      // What the form says is stored already: the same form sent twice (a second click on Save, whose
      // answer is the one the browser shows) or the same edit made elsewhere. Nothing would be
      // overwritten, so it is the save the user asked for, not a conflict.
      if (latest.title === form.data.title && latest.content === form.data.content) {
        return afterSave(req, res, latest, "changed");
      }
      renderForm(res, {
        post: latest,
        values: form.values,
        errors: addError({}, NON_FIELD, STALE),
        version: latest.updatedAt.toISOString(),
        status: 409,
      });
    } catch (err) {
      renderUnsaved(res, err, { id: parseId(req.params.id), values: form.values, version: opened });
    }
  });

  return router;
}
