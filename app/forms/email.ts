// Django's EmailValidator and BaseUserManager.normalize_email, which createsuperuser applies. zod's
// z.email() is stricter than Django: it refuses root@localhost, IDN domains and IP literals.
import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { stripSpace } from "./fields.ts";

/** A dot-atom or a quoted string (RFC 5322), as Django's user_regex. */
const USER =
  // eslint-disable-next-line no-control-regex -- a quoted local part may hold control characters (RFC 5322)
  /^(?:[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-[\]-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")$/i;

/** Labels of at most 63 characters (RFC 1034) and a top-level label of letters, digits or "-". */
const DOMAIN = /^(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+[A-Z0-9-]{2,63}(?<!-)$/i;

/** An address literal: user@[127.0.0.1] or user@[::1] (SMTP, RFC 5321 4.1.3). */
const LITERAL = /^\[([A-F0-9:.]+)\]$/i;

/** Django's domain_allowlist: names without a dot that are still mail domains. */
const ALLOWED_DOMAINS = new Set(["localhost"]);

/** The maximum length of an address, RFC 3696 section 3 (Django checks the same). */
const MAX_LENGTH = 320;

function validDomain(domain: string): boolean {
  if (DOMAIN.test(domain)) return true;
  const literal = LITERAL.exec(domain);
  return literal !== null && isIP(literal[1]!) !== 0;
}

export function isValidEmail(value: string): boolean {
  const at = value.lastIndexOf("@");
  if (at < 0 || value.length > MAX_LENGTH) return false;
  const user = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!USER.test(user)) return false;
  if (ALLOWED_DOMAINS.has(domain) || validDomain(domain)) return true;
  // An internationalised domain (bücher.de) is checked in its ASCII form (xn--bcher-kva.de).
  const ascii = domainToASCII(domain);
  return ascii !== "" && validDomain(ascii);
}

/** The domain part is case-insensitive, so Django stores it lowercased; the user part may not be. */
export function normalizeEmail(email: string): string {
  const trimmed = stripSpace(email);
  const at = trimmed.lastIndexOf("@");
  return at < 0 ? trimmed : `${trimmed.slice(0, at)}@${trimmed.slice(at + 1).toLowerCase()}`;
}
