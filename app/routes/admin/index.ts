// The admin site at /admin/: Django's URL layout, its login guard and its cache headers.
import type { Router, NextFunction, Request, Response } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { PrismaClient } from "../../generated/prisma/client.ts";
import type { Auth } from "../../auth/session.ts";
import { canManagePosts, requireStaff } from "../../auth/guard.ts";
import { forbidden, MissingObject, notFound } from "../../errors.ts";
import { messages } from "../../messages.ts";
import { loginRoutes, logoutRoutes } from "./auth.ts";
import { passwordRoutes } from "./password.ts";
import { changelistRoutes } from "./changelist.ts";
import { postFormRoutes } from "./post-form.ts";
import { postDeleteRoutes } from "./post-delete.ts";
import { historyRoutes } from "./history.ts";
import { poolerRoutes, POOLER_URL } from "./pooler.ts";
import { urls } from "./post-admin.ts";
import { preserveFilters } from "./preserved-filters.ts";
import type { PoolerMonitor } from "../../pooler/monitor.ts";

export interface AdminDeps {
  prisma: PrismaClient;
  auth: Auth;
  /** scrypt cost for new password hashes */
  scryptN: number;
  /** the app's one reader of the pooler's admin console, for /admin/pooler/ */
  poolerMonitor: PoolerMonitor;
}

/** Django's never_cache (admin pages show private, changing data), and the URLs for the views. */
function neverCache(_req: Request, res: Response, next: NextFunction): void {
  res.set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private");
  res.set("Expires", new Date(0).toUTCString());
  res.locals.urls = urls;
  next();
}

/**
 * Django's APPEND_SLASH: every admin URL ends with "/", so /admin/core/post redirects there. Django
 * leaves alone URLs that name a view as they are; ours are the files, such as data.json.
 */
function appendSlash(req: Request, res: Response, next: NextFunction): void {
  const url = new URL(req.originalUrl, "http://local.invalid");
  const file = /\/[^/]+\.[a-z]+$/.test(url.pathname);
  if ((req.method === "GET" || req.method === "HEAD") && !url.pathname.endsWith("/") && !file) {
    // URL resolves "/admin/..//evil.example" to "//evil.example", which a browser would take as
    // another host: the redirect stays on this one.
    const path = url.pathname.replace(/^\/+/, "/");
    return res.redirect(301, `${path}/${url.search}`);
  }
  next();
}

function requirePostPermission(req: Request, _res: Response, next: NextFunction): void {
  if (!canManagePosts(req.user)) throw forbidden();
  next();
}

export function adminRouter(deps: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });
  router.use(neverCache, appendSlash);
  router.use(loginRoutes(deps));
  router.use(requireStaff);
  router.use(logoutRoutes(deps));
  router.get("/", async (req, res) => {
    // Django's "Recent actions" panel: the user's own last ten.
    const recentActions = await deps.prisma.adminLog.findMany({
      where: { userId: req.user!.id },
      orderBy: [{ actionTime: "desc" }, { id: "desc" }],
      take: 10,
    });
    res.render("admin/index", {
      title: "Site administration",
      canManagePosts: canManagePosts(req.user),
      recentActions,
      poolerUrl: POOLER_URL,
    });
  });
  // Django's app index: the app's models, for those who may see one of them (404 otherwise, as Django).
  router.get("/core/", (req, res) => {
    if (!canManagePosts(req.user)) throw notFound();
    res.render("admin/app-index", { title: "Core administration" });
  });
  router.use(passwordRoutes(deps));
  // Any staff member, as Django's admindocs: it shows how the site runs, not its data.
  router.use("/pooler", poolerRoutes(deps));
  router.use(
    "/core/post",
    requirePostPermission,
    preserveFilters,
    changelistRoutes(deps),
    postFormRoutes(deps),
    postDeleteRoutes(deps),
    historyRoutes(deps),
  );
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!(err instanceof MissingObject)) return next(err);
    messages.warning(req, err.message);
    res.redirect(302, `${req.baseUrl}/`);
  });
  return router;
}
