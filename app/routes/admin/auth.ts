// Admin login and logout, as Django's AdminSite.login / LogoutView.
import type { Router, Request, Response } from "express";
import { caseSensitiveRouter } from "../router.ts";
import { rateLimit } from "express-rate-limit";
import type { AdminDeps } from "./index.ts";
import { isAdminUser } from "../../auth/guard.ts";
import { redirectToNext, safeNext } from "../../auth/next-url.ts";
import {
  needsRehash,
  hashPassword,
  rejectPasswordInConstantTime,
  verifyPassword,
} from "../../auth/passwords.ts";
import { loginForm } from "../../forms/auth.ts";
import { addError, NON_FIELD, parseForm, type FieldErrors } from "../../forms/fields.ts";
import { methodNotAllowed } from "../../method-not-allowed.ts";

const INVALID_LOGIN =
  "Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive.";

/** Brute-force brake: 5 failed logins per client address per 15 minutes, then 429. */
function loginRateLimit() {
  return rateLimit({
    windowMs: 15 * 60 * 1000,
    limit: 5,
    skipSuccessfulRequests: true,
    // A failed login is answered with 200 (Django's behaviour), so success is what the route says.
    requestWasSuccessful: (_req, res) => res.statusCode < 400 && res.locals.loginFailed !== true,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).render("errors/error", {
        title: "Too many login attempts",
        detail: "Too many failed login attempts from your address. Please wait 15 minutes and try again.",
      });
    },
  });
}

function renderLogin(
  res: Response,
  next: string,
  values: Record<string, string> = {},
  errors: FieldErrors = {},
) {
  res.render("admin/login", { title: "Log in", next, values, errors });
}

export function loginRoutes({ prisma, auth, scryptN }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  router.get("/login/", (req, res) => {
    if (isAdminUser(req.user)) return res.redirect(302, "/admin/");
    renderLogin(res, safeNext(req.query.next, req));
  });

  router.post("/login/", loginRateLimit(), async (req: Request, res: Response) => {
    // LoginView's RedirectURLMixin: the form's next, else the query's.
    const next = safeNext(req.body?.next ?? req.query.next, req);
    const form = parseForm(loginForm, req.body);
    if (!form.ok) {
      res.locals.loginFailed = true;
      return renderLogin(res, next, form.values, form.errors);
    }
    const { username, password } = form.data;
    const found = await prisma.user.findUnique({ where: { username } });
    const valid = found
      ? await verifyPassword(password, found.password, { N: scryptN })
      : await rejectPasswordInConstantTime(password, { N: scryptN });
    if (!valid || !isAdminUser(found)) {
      res.locals.loginFailed = true;
      return renderLogin(res, next, form.values, addError({}, NON_FIELD, INVALID_LOGIN));
    }
    const user = await prisma.user.update({
      where: { id: found.id },
      data: {
        lastLogin: new Date(),
        // Hashes made with a lower cost are upgraded while we have the plain password.
        ...(needsRehash(found.password, { N: scryptN }) && {
          password: await hashPassword(password, { N: scryptN }),
        }),
      },
    });
    await auth.logIn(req, user);
    redirectToNext(res, next);
  });

  // Logging in is open to anybody, so a method it does not take is answered here, before the
  // admin's login guard would send the visitor to log in.
  router.use(methodNotAllowed(router));
  return router;
}

/** Behind the admin's login guard, as Django wraps LogoutView in admin_view. */
export function logoutRoutes({ auth }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  // Since Django 5.0 logging out takes a POST: a link or an <img> on another site cannot do it.
  router.post("/logout/", async (req, res) => {
    // LogoutView's RedirectURLMixin: the form's next, else the query's; one that could leave the
    // site is ignored and the page is shown.
    const next = safeNext(req.body?.next ?? req.query.next, req, "");
    await auth.logOut(req, res);
    if (next) return redirectToNext(res, next);
    res.locals.user = undefined;
    res.render("admin/logged-out", { title: "Logged out" });
  });

  return router;
}
