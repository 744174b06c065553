// PostgreSQL's MD5 password authentication (AuthenticationMD5Password, protocol 3.0).
//
// The stored form ("secret") is "md5" + hex(md5(password + user)), as in pg_authid.rolpassword and
// PgBouncer's userlist.txt. On the wire the client answers a 4-byte salt with
// "md5" + hex(md5(hex(md5(password + user)) + salt)); note that the inner hash enters the outer one
// as its 32 hex characters, not as raw bytes. Knowing the secret is therefore enough to log in,
// which is what lets PgBouncer (and us) log in to a server with a stored md5 hash.
//
// Strings are hashed as UTF-8: PostgreSQL hashes the bytes it received in the client encoding,
// which is UTF-8 for every client we expect (node-postgres, libpq with a UTF-8 locale, Prisma).
import crypto from "node:crypto";

/** The salt PostgreSQL sends in AuthenticationMD5Password is always 4 bytes. */
export const MD5_SALT_LENGTH = 4;

// Same test as PostgreSQL's get_password_type(): exactly "md5" and 32 lowercase hex digits. The hex
// is hashed as text in md5Response, so an uppercase variant would be a different secret.
const MD5_SECRET = /^md5[0-9a-f]{32}$/;

export function isMd5Secret(s: string): boolean {
  return MD5_SECRET.test(s);
}

function md5Hex(...parts: (string | Buffer)[]): string {
  const h = crypto.createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/** The pg_authid / userlist.txt form of a password: "md5" + hex(md5(password + user)). */
export function md5Secret(user: string, password: string): string {
  return "md5" + md5Hex(password, user);
}

/**
 * What a client sends in answer to AuthenticationMD5Password. `passwordOrSecret` may be the
 * password itself or an md5 secret as returned by md5Secret (then its hash is used directly).
 */
export function md5Response(user: string, passwordOrSecret: string, salt: Buffer): string {
  if (salt.length !== MD5_SALT_LENGTH) {
    throw new RangeError(`MD5 salt must be ${MD5_SALT_LENGTH} bytes, got ${salt.length}`);
  }
  const secret = isMd5Secret(passwordOrSecret) ? passwordOrSecret : md5Secret(user, passwordOrSecret);
  return "md5" + md5Hex(secret.slice(3), salt);
}

/**
 * Checks a client's answer to AuthenticationMD5Password against what the pooler knows of the user:
 * the plain password or its md5 secret. A stored "md5" entry that is not a well-formed secret never
 * matches (rather than being mistaken for a plain password).
 */
export function md5Verify(
  user: string,
  stored: { kind: "plain" | "md5"; secret: string },
  salt: Buffer,
  clientResponse: string,
): boolean {
  let secret: string;
  if (stored.kind === "md5") {
    if (!isMd5Secret(stored.secret)) return false;
    secret = stored.secret;
  } else {
    // Hash explicitly: a plain password that happens to look like "md5..." is still a password.
    secret = md5Secret(user, stored.secret);
  }
  const expected = Buffer.from(md5Response(user, secret, salt), "utf8");
  const actual = Buffer.from(clientResponse, "utf8");
  // The expected length is public (always 35), so returning early on a length mismatch leaks
  // nothing; timingSafeEqual requires equal lengths.
  return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
}
