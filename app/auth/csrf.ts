// CSRF protection as Django's: the secret lives in a cookie (`csrftoken`, a year, SameSite=Lax), so
// a visitor who is not logged in has nothing stored on the server and a login form left open for
// hours still works. csrf-csrf's double-submit cookie: a form sends the cookie's token back as the
// hidden field `_csrf` (scripts may use the x-csrf-token header), and the token is an HMAC bound to
// the login it was issued for, so that one from before a login, or from another login, is refused.
import crypto from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import cookieParser from "cookie-parser";
import { doubleCsrf } from "csrf-csrf";
import type { AppConfig } from "../config.ts";
import { LOGOUT_URL } from "./guard.ts";

declare module "express-session" {
  interface SessionData {
    /** drawn at each login, kept across a password change: what the login's CSRF tokens are bound to */
    csrfKey?: string;
  }
}

/** Django's CSRF_COOKIE_NAME. */
export const CSRF_COOKIE = "csrftoken";

/** Django's CSRF_COOKIE_AGE: 52 weeks. */
export const CSRF_COOKIE_AGE_MS = 31_449_600 * 1000;

/**
 * What a token is bound to: "" for a visitor who is not logged in; the user and the login's key
 * otherwise. A login draws a new key, so a token from before it, or from another login of the same
 * user, no longer matches; logging out destroys the session, and its tokens with it.
 */
function sessionIdentifier(req: Request): string {
  const data = req.session;
  if (data?.userId === undefined) return "";
  return `${data.userId}.${data.csrfKey ?? ""}`;
}

export function createCsrfProtection(
  config: Pick<AppConfig, "sessionSecret" | "behindTls">,
): RequestHandler[] {
  // A key of its own, derived from SESSION_SECRET: a token is no signature of anything else.
  const secret = crypto.createHmac("sha256", config.sessionSecret).update("csrf-token").digest("hex");
  const { doubleCsrfProtection } = doubleCsrf({
    getSecret: () => secret,
    getSessionIdentifier: sessionIdentifier,
    cookieName: CSRF_COOKIE,
    cookieOptions: {
      sameSite: "lax",
      secure: config.behindTls,
      httpOnly: true,
      path: "/",
      maxAge: CSRF_COOKIE_AGE_MS,
    },
    // Logging out a browser that is not logged in changes nothing (it is sent to the admin index),
    // so a token of a login that has ended will do. Without this, "Log out" in a tab left open after
    // logging out in another tab (or after the session expired) sends such a token and gets a CSRF
    // failure, where Django, whose token outlives the login, sends it to the index. Django still
    // refuses a POST with no cookie or no token at all, and so do we.
    skipCsrfProtection: (req) => req.path === LOGOUT_URL && sentByEndedLogin(req),
    getCsrfTokenFromRequest: tokenFromRequest,
  });
  return [cookieParser(), textCookiesOnly, doubleCsrfProtection];
}

/**
 * A browser that is not logged in but sends a cookie and a token: one a login gave it, since ended
 * (logged out in another tab, or the session expired), if it fails the check.
 */
export function sentByEndedLogin(req: Request): boolean {
  return (
    req.session?.userId === undefined &&
    typeof req.cookies?.[CSRF_COOKIE] === "string" &&
    Boolean(tokenFromRequest(req))
  );
}

/** The token a request sends: the form's `_csrf` field, else the x-csrf-token header (scripts). */
function tokenFromRequest(req: Request): string | undefined {
  const field: unknown = req.body?._csrf;
  return typeof field === "string" ? field : req.get("x-csrf-token");
}

/** cookie-parser turns "j:{…}" into an object, on which csrf-csrf would throw: such a cookie is no token. */
function textCookiesOnly(req: Request, _res: Response, next: NextFunction): void {
  const cookies = req.cookies as Record<string, unknown>;
  if (typeof cookies[CSRF_COOKIE] !== "string") delete cookies[CSRF_COOKIE];
  next();
}

/** One token per response, however many forms the page has. */
const issued = new WeakMap<Request, string>();

function generate(req: Request, overwrite: boolean): string {
  if (!req.csrfToken) throw new Error("CSRF protection is not installed on this request");
  const token = req.csrfToken({ overwrite });
  issued.set(req, token);
  return token;
}

/** The token for this page's forms: the cookie's, if it belongs to this login, else a new one. */
export function csrfToken(req: Request): string {
  return issued.get(req) ?? generate(req, false);
}

/** As Django's login(): a new key, so that a token seen before logging in is worth nothing after. */
export function rotateCsrfToken(req: Request): void {
  req.session.csrfKey = crypto.randomBytes(16).toString("hex");
  generate(req, true);
}

/**
 * Runs `renew` (which replaces the session) and keeps the login's key in the new session: Django's
 * update_session_auth_hash cycles the session key but keeps the CSRF token, so the other forms the
 * browser has open still send a valid one.
 */
export async function keepingCsrfToken(req: Request, renew: () => Promise<void>): Promise<void> {
  const key = req.session.csrfKey;
  await renew();
  if (key) req.session.csrfKey = key;
}

export function isCsrfError(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "EBADCSRFTOKEN";
}
