// Who may enter the admin. Like Django's AdminSite.has_permission: active staff members; anybody
// else is sent to the login page with ?next= so that they come back after logging in.
import type { NextFunction, Request, Response } from "express";
import type { User } from "../generated/prisma/client.ts";

export function isAdminUser(user: User | null | undefined): user is User {
  return !!user && user.isActive && user.isStaff;
}

/** We have no per-model permissions: only superusers may manage posts, as in a fresh Django site. */
export function canManagePosts(user: User | undefined): boolean {
  return isAdminUser(user) && user.isSuperuser;
}

export const LOGIN_URL = "/admin/login/";

/** Django's redirect_to_login(): the path is percent-encoded, except its slashes. */
export function loginUrl(next: string): string {
  return `${LOGIN_URL}?next=${encodeURIComponent(next).replace(/%2F/gi, "/")}`;
}

export const ADMIN_INDEX = "/admin/";
export const LOGOUT_URL = "/admin/logout/";

/**
 * Django's admin_view, which runs before the view: a visitor it does not let in goes to log in and
 * back, except at the logout URL, where there is no login to end nor a page to come back to.
 */
export function requireStaff(req: Request, res: Response, next: NextFunction): void {
  if (isAdminUser(req.user)) return next();
  if (req.baseUrl + req.path === LOGOUT_URL) return res.redirect(302, ADMIN_INDEX);
  res.redirect(302, loginUrl(req.originalUrl));
}
