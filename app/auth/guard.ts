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

/** Django's redirect_to_login(): the path is percent-encoded, except its slashes. */
export function loginUrl(next: string): string {
  return `/admin/login/?next=${encodeURIComponent(next).replace(/%2F/gi, "/")}`;
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

/** What a next= URL is checked against: Express's req.host (the Host header, or the X-Forwarded-Host
 *  of a proxy TRUST_PROXY trusts) and req.secure. */
export type OwnSite = Pick<Request, "host" | "secure">;

/** A plain host[:port] (a name or an IP literal): no user info, path or other characters to smuggle. */
const PLAIN_HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * Django's url_has_allowed_host_and_scheme(next, {request.get_host()}, request.is_secure()): a local
 * path, or an absolute URL on this very host, https-only when the request came over https. Anything
 * that could leave the site falls back.
 */
export function safeNext(raw: unknown, site: OwnSite, fallback = ADMIN_INDEX): string {
  if (typeof raw !== "string") return fallback;
  // Browsers read "\" as "/" and drop tabs and newlines, so "/\evil.example" or "/\t/evil.example"
  // would become "//evil.example": another site.
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return fallback;
  if (raw.startsWith("/")) {
    if (raw.startsWith("//")) return fallback;
    const base = new URL("http://local.invalid/");
    return new URL(raw, base).origin === base.origin ? raw : fallback;
  }
  const absolute = /^(https?):\/\/([^/?#]*)(?:[/?#]|$)/i.exec(raw);
  if (!absolute || !site.host || !PLAIN_HOST.test(site.host)) return fallback;
  const [, scheme, authority] = absolute;
  if (site.secure && scheme!.toLowerCase() !== "https") return fallback;
  // As Django, the URL's authority must be the Host itself, character for character.
  return authority === site.host ? raw : fallback;
}
