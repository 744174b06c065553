// Where a next= may send the browser, by Django's url_has_allowed_host_and_scheme (django/utils/http.py)
// and iri_to_uri, which its HttpResponseRedirect applies to the Location header.
import type { Request, Response } from "express";
import { ADMIN_INDEX } from "./guard.ts";

/** What a next= URL is checked against: Express's req.host (the Host header, or the X-Forwarded-Host
 *  of a proxy TRUST_PROXY trusts) and req.secure. */
export type OwnSite = Pick<Request, "host" | "secure">;

/** Django's host_validation_re: a Host that is not a plain host[:port] vouches for no URL. */
const PLAIN_HOST = /^(?:[a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::\d+)?$/i;

/** Django's MAX_URL_LENGTH, in code points as Python counts. */
const MAX_URL_LENGTH = 2048;

/** What Python's str.strip() takes off (str.isspace), which is not JavaScript's trim(): \x1c-\x1f and
 *  \x85 are stripped, \ufeff is not. */
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");

/** The scheme and netloc Python's urlsplit finds: it first drops leading C0 controls and spaces, and
 *  tabs and newlines anywhere (as browsers do). */
function urlsplit(url: string): { scheme: string; netloc: string } {
  // eslint-disable-next-line no-control-regex -- what urlsplit drops is control characters
  let rest = url.replace(/^[\u0000-\u0020]+/, "").replace(/[\t\r\n]/g, "");
  let scheme = "";
  const colon = rest.indexOf(":");
  if (colon > 0 && /^[a-z][a-z0-9+.-]*$/i.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  return { scheme, netloc: /^\/\/([^/?#]*)/.exec(rest)?.[1] ?? "" };
}

/** Django's _url_has_allowed_host_and_scheme, for one spelling of the URL. */
function allowedSpelling(url: string, site: OwnSite): boolean {
  if (url.startsWith("///") || [...url].length > MAX_URL_LENGTH) return false;
  const { scheme, netloc } = urlsplit(url);
  // http:///evil.example: browsers take evil.example for the host.
  if (!netloc && scheme) return false;
  // Browsers skip control and format characters in front of a URL, which may leave "//evil.example".
  if (/^\p{C}/u.test(url)) return false;
  const effective = scheme || (netloc ? "http" : "");
  const schemes = site.secure ? ["https"] : ["http", "https"];
  const ownHost = !netloc || (netloc === site.host && PLAIN_HOST.test(site.host));
  return ownHost && (!effective || schemes.includes(effective));
}

/**
 * Django's url_has_allowed_host_and_scheme(next, {request.get_host()}, request.is_secure()): a URL
 * without a host (a path, even a relative one), or on this very host, https-only when the request came
 * over https. Browsers read "\" as "/", so the URL must pass with them as they are and as slashes. The
 * value is kept as given, as Django's LoginView does; anything else falls back.
 */
export function safeNext(raw: unknown, site: OwnSite, fallback = ADMIN_INDEX): string {
  if (typeof raw !== "string") return fallback;
  const url = raw.replace(PY_STRIP, "");
  if (!url) return fallback;
  const allowed = allowedSpelling(url, site) && allowedSpelling(url.replaceAll("\\", "/"), site);
  return allowed ? raw : fallback;
}

/** Characters Django's iri_to_uri leaves as they are ("%" is taken for an escape already made). */
const IRI_ENCODED = /[^A-Za-z0-9_.~\-/#%[\]=:;$&()+,!?*@']/gu;

/**
 * Django's HttpResponseRedirect(next): its Location is iri_to_uri(next), every other character
 * percent-encoded as UTF-8. Express's res.redirect() would leave "\", "^" and "|" as they are (a
 * browser reads "/\host" as "//host") and turn a "%" into "%25" when no two hex digits follow.
 */
export function redirectToNext(res: Response, next: string): void {
  res.status(302).set("Location", next.replace(IRI_ENCODED, encodeURIComponent)).end();
}
