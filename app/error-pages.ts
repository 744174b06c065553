// The 404 page and the error handler. A 4xx error shows what went wrong in plain words; a database
// outage, or a transaction that ran out of time, is a 503 that says what was saved and keeps what was
// sent; anything else is a 500 that is logged with its stack, while the page shows the stack only in
// development.
import type { NextFunction, Request, Response } from "express";
import { HttpError, notFound } from "./errors.ts";
import { isCsrfError, sentByEndedLogin } from "./auth/csrf.ts";
import { ADMIN_INDEX, LOGIN_URL, loginUrl } from "./auth/guard.ts";
import { needsAdministrator, RETRY_AFTER_SECONDS, saveFailure, type SaveFailure } from "./db-errors.ts";
import { bodyFields } from "./query-dict.ts";

const HEADINGS: Record<number, string> = {
  400: "Bad Request (400)",
  403: "403 Forbidden",
  404: "Not Found",
  405: "Method Not Allowed (405)",
  413: "Request Too Large (413)",
  500: "Server Error (500)",
  503: "Service Unavailable (503)",
};

const DETAILS: Record<number, string> = {
  400: "The request could not be understood.",
  403: "You do not have permission to access this page.",
  404: "The requested resource was not found on this server.",
  405: "This page does not accept that kind of request.",
  413: "The submitted data is too large.",
  500: "Something went wrong on our side. The error has been logged.",
  503: "The database could not be reached. Please try again in a moment.",
};

/** What a POST that failed for the database's sake did, or may have done. */
const UNCHANGED: Record<SaveFailure, string> = {
  unreachable: "The database could not be reached, so nothing was saved or changed.",
  "outcome unknown":
    "The database went away while your change was being saved: it may or may not have been made. Check before sending it again.",
  "timed out":
    "The change took too long (another change may have been holding the same rows), so nothing was saved or changed.",
  "no answer": "The database took too long to answer, so nothing was saved or changed.",
  // a write sent outside a transaction (a login's last_login) may be applied once the database gets to it
  "write unanswered":
    "The database took too long to answer, so what you sent may or may not have been saved. Check before sending it again.",
  "transactions refused":
    "The database's connection pooler refuses transactions (it runs in statement pooling mode), so nothing was saved or changed. The site's administrator must switch the pooler to transaction or session pooling.",
};

const WARNINGS: Partial<Record<SaveFailure, string>> = {
  "timed out": "transaction timed out",
  "no answer": "query timed out",
  "write unanswered": "query timed out",
};

/** Form fields never sent back to the browser, as Django never re-displays a password. */
const SECRET_FIELD = /password/i;

/**
 * What a POST sent, to offer it again on the 503 page: an outage before the handler ran (the
 * session could not be loaded) leaves no form to re-render, but the text typed must not be lost.
 */
function keptFields(req: Request): [string, string][] {
  if (req.method !== "POST") return [];
  return bodyFields(req).filter(([name]) => !SECRET_FIELD.test(name));
}

const LOGIN_ENDED =
  "Your session has ended (you logged out, perhaps in another tab, or it expired), so nothing was saved or changed. Log in again, then send it again.";

/**
 * An admin form sent by a browser whose login has ended: its token, bound to that login, fails the
 * check. Django's token outlives the login, so Django sends such a form to log in, and what was
 * typed is lost; here the page says why and keeps it.
 */
function sentAfterLoginEnded(req: Request): boolean {
  return (
    req.method === "POST" &&
    req.path.startsWith(ADMIN_INDEX) &&
    req.path !== LOGIN_URL &&
    sentByEndedLogin(req)
  );
}

/** body-parser's error for a body over the app's limit, which it gives as `limit` (bytes). */
function tooLargeBodyLimit(err: unknown): number | undefined {
  const { type, limit } = (err ?? {}) as { type?: unknown; limit?: unknown };
  return type === "entity.too.large" && typeof limit === "number" ? limit : undefined;
}

export function notFoundHandler(_req: Request, _res: Response, next: NextFunction): void {
  next(notFound());
}

/** 4xx errors raised by Express's own parts (body-parser) carry a status; trust only those. */
function clientStatus(err: unknown): number | undefined {
  if (err instanceof HttpError) return err.status;
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

export function errorHandler(production: boolean) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    let status = clientStatus(err) ?? 500;
    let detail = err instanceof HttpError && err.message ? err.message : DETAILS[status];
    let loginEnded = false;
    if (isCsrfError(err)) {
      status = 403;
      loginEnded = sentAfterLoginEnded(req);
      // Django's words, for a token that was never this browser's
      detail = loginEnded ? LOGIN_ENDED : "CSRF verification failed. Request aborted.";
    }
    const limit = tooLargeBodyLimit(err);
    if (limit !== undefined) {
      // Django's RequestDataTooBig is a 400. The body was never read, so nothing of it can be
      // offered again: the text is still in the browser's form, one step back.
      status = 400;
      detail =
        `The submitted data is too large: a form may send at most ${limit / 2 ** 20} MB, so nothing was saved. ` +
        "Go back to the form (your browser still has your text), shorten it and send it again.";
    }
    const failure = status === 500 ? saveFailure(err) : null;
    if (failure !== null) {
      status = 503;
      if (req.method !== "GET" && req.method !== "HEAD") detail = UNCHANGED[failure];
      else if (failure === "no answer" || failure === "write unanswered")
        detail = "The database took too long to answer. Please try again in a moment.";
      else detail = DETAILS[503];
      if (needsAdministrator(failure)) req.log.error({ err }, "request failed: pooler misconfigured");
      else {
        res.set("Retry-After", RETRY_AFTER_SECONDS);
        req.log.warn({ err }, WARNINGS[failure] ?? "database unavailable");
      }
    }
    if (status === 500) req.log.error({ err }, "request failed");
    const stack = !production && status === 500 && err instanceof Error ? err.stack : undefined;
    // An error page leaves pending messages for the next real page: a stray request (a browser's
    // /favicon.ico between a POST's redirect and the page it leads to) must not swallow them.
    res.locals.consumeMessages = undefined;
    res.status(status).render("errors/error", {
      title: HEADINGS[status] ?? `Error (${status})`,
      detail: detail ?? "",
      stack,
      resend: failure !== null ? { action: req.originalUrl, fields: keptFields(req) } : undefined,
      // no form to send again: its token is of the ended login, so the text is offered to copy
      loggedOut: loginEnded
        ? {
            login: loginUrl(req.originalUrl),
            fields: keptFields(req).filter(([name]) => !name.startsWith("_")),
          }
        : undefined,
    });
  };
}
