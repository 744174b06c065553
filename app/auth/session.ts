// Who is logged in. As in Django, the session stores the user's id and an HMAC of their password
// hash: changing the password changes the HMAC, so every other session of that user stops working
// at its next request, while the session that made the change is updated and stays logged in.
import crypto from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import session from "express-session";
import connectPgSimple from "connect-pg-simple";
import pg from "pg";
import type { PrismaClient, User } from "../generated/prisma/client.ts";
import type { AppConfig } from "../config.ts";
import { keepingCsrfToken, rotateCsrfToken } from "./csrf.ts";

declare module "express-session" {
  interface SessionData {
    userId?: number;
    authHash?: string;
  }
}

declare module "express-serve-static-core" {
  interface Request {
    /** the logged-in user, if the session holds a valid login */
    user?: User;
  }
}

/** Django's SESSION_COOKIE_AGE: two weeks. */
const SESSION_AGE_MS = 14 * 24 * 3600 * 1000;
export type SessionStore = connectPgSimple.PGStore;

/** Django's SESSION_COOKIE_NAME. */
const SESSION_COOKIE = "sessionid";

/**
 * Django's SessionInterrupted: the session this request loaded was deleted before the request
 * saved it, most often by a logout (or a new login, or a password change) in another tab.
 */
export class SessionInterrupted extends Error {
  constructor() {
    super("the session was deleted before the request completed");
  }
}

export function createSessionStore(pool: pg.Pool, schemaName: string): SessionStore {
  const PGStore = connectPgSimple(session);
  const table = `${pg.escapeIdentifier(schemaName)}."session"`;
  /** Sessions read from the store, as opposed to those created by this request (a login). */
  const loaded = new WeakSet<object>();

  /**
   * The store's own set() is an upsert: a request that loaded a session before another tab logged
   * out would write the ended login back. As Django's save(must_create=False), a session read from
   * the store is only updated, and one deleted meanwhile is SessionInterrupted.
   */
  class ExistingOnlyStore extends PGStore {
    override createSession(req: Request, data: session.SessionData) {
      const created = super.createSession(req, data);
      loaded.add(created);
      return created;
    }

    override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
      if (!loaded.has(data)) return super.set(sid, data, callback);
      const expires = data.cookie.expires ? Math.ceil(new Date(data.cookie.expires).getTime() / 1000) : null;
      pool
        .query(`UPDATE ${table} SET sess = $1, expire = coalesce(to_timestamp($2), expire) WHERE sid = $3`, [
          data,
          expires,
          sid,
        ])
        .then(
          (result) => callback?.(result.rowCount === 0 ? new SessionInterrupted() : undefined),
          (err: unknown) => callback?.(err),
        );
    }
  }

  // The `session` table comes from the Prisma migration, not from the store. No touch: like Django
  // (SESSION_SAVE_EVERY_REQUEST = False) a session is written when it changes, not on every request.
  return new ExistingOnlyStore({
    pool,
    schemaName,
    tableName: "session",
    createTableIfMissing: false,
    disableTouch: true,
  });
}

export function sessionMiddleware(
  config: Pick<AppConfig, "sessionSecret" | "behindTls">,
  store: session.Store,
): RequestHandler {
  return session({
    name: SESSION_COOKIE,
    secret: config.sessionSecret,
    store,
    resave: false,
    // No row and no cookie for a visitor who does not log in (the login form's CSRF token is in a
    // cookie of its own, as Django's): only a login, or a message for a logged-in user, stores one.
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: "lax", secure: config.behindTls, maxAge: SESSION_AGE_MS },
  });
}

/**
 * Saves the session before a redirect goes out. express-session saves at res.end but sends the
 * headers first, and a browser follows a 302 as soon as it has them: the next page could load the
 * session before the save (losing "The post … was changed successfully." under load).
 */
export function saveSessionBeforeRedirect(req: Request, res: Response, next: NextFunction): void {
  const redirect = res.redirect.bind(res) as (...args: unknown[]) => void;
  res.redirect = ((...args: unknown[]) => {
    // An anonymous visitor's empty session is not stored at all (saveUninitialized: false).
    const hasData = req.session && Object.keys(req.session).some((key) => key !== "cookie");
    if (!hasData) return redirect(...args);
    req.session.save((err) => {
      // What the handler did before redirecting is done (a post saved, a password changed): an
      // error page would report it undone. Only the session's part, a message, is lost.
      if (err) req.log.warn({ err }, "session not saved before a redirect");
      // A login ended meanwhile stays ended: without a session, no cookie brings its id back.
      if (err instanceof SessionInterrupted) return req.session.destroy(() => redirect(...args));
      redirect(...args);
    });
  }) as Response["redirect"];
  next();
}

function authHash(secret: string, user: User): string {
  return crypto.createHmac("sha256", secret).update(`auth-hash:${user.password}`).digest("hex");
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function promised(fn: (cb: (err?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

export function createAuth(prisma: PrismaClient, secret: string) {
  /** A new session id for `user` (against session fixation). */
  async function newSession(req: Request, user: User): Promise<void> {
    await promised((cb) => req.session.regenerate(cb));
    req.session.userId = user.id;
    req.session.authHash = authHash(secret, user);
    req.user = user;
  }

  return {
    async logIn(req: Request, user: User): Promise<void> {
      await newSession(req, user);
      // As Django's login(): a token seen before logging in is worth nothing after.
      rotateCsrfToken(req);
      // A login is nothing but the session: saved here, a store that fails fails the login
      // (503) instead of redirecting to a page that asks to log in again.
      await promised((cb) => req.session.save(cb));
    },

    async logOut(req: Request, res: Response): Promise<void> {
      const { path, httpOnly, sameSite, secure } = req.session.cookie;
      await promised((cb) => req.session.destroy(cb));
      // As Django's flush(): the browser forgets the cookie too, instead of sending a dead id.
      res.clearCookie(SESSION_COOKIE, { path, httpOnly, sameSite, secure: secure === true });
      delete req.user;
    },

    /**
     * After a password change: this browser stays logged in, under a new session id (Django's
     * update_session_auth_hash cycles the key), while the changed hash ends all the other sessions.
     * The CSRF token stays, as in Django: forms open in other tabs can still be sent.
     */
    updateSessionAuthHash: (req: Request, user: User): Promise<void> =>
      keepingCsrfToken(req, () => newSession(req, user)),

    /** Sets req.user from the session, and ends sessions whose user is gone or changed password. */
    loadUser: async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
      const { userId, authHash: stored } = req.session;
      const user = userId === undefined ? null : await prisma.user.findUnique({ where: { id: userId } });
      if (user && stored !== undefined && sameHash(stored, authHash(secret, user))) {
        // As Django's ModelBackend.get_user: an inactive user is nobody (the login page must not
        // say "You are authenticated as …"), while the session stays for when they are reactivated.
        if (user.isActive) req.user = user;
      } else if (userId !== undefined) {
        await promised((cb) => req.session.regenerate(cb));
      }
      next();
    },
  };
}

export type Auth = ReturnType<typeof createAuth>;
