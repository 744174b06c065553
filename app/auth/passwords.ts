// Password hashing with node:crypto's scrypt (OWASP's choice when Argon2id is unavailable, as on
// Node 20). The parameters travel inside the stored string, "scrypt$N$r$p$salt$hash" in the spirit of
// Django's "algorithm$iterations$salt$hash", so the cost can be raised later without locking out users
// whose hashes were made with the old one.
import crypto from "node:crypto";
import { promisify } from "node:util";
import { DEFAULT_SCRYPT_N } from "../config.ts";

const scrypt = promisify<crypto.BinaryLike, crypto.BinaryLike, number, crypto.ScryptOptions, Buffer>(
  crypto.scrypt,
);

const ALGORITHM = "scrypt";
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
/** Django marks accounts that cannot log in with a password this way; no hash can start with it. */
const UNUSABLE_PREFIX = "!";

export interface HashOptions {
  /** CPU/memory cost, a power of two. */
  N?: number;
}

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is below OWASP's N=2^17, r=8.
  // NFKC (NIST SP 800-63B): the same password typed with composed or decomposed accents must match.
  return scrypt(password.normalize("NFKC"), salt, KEY_BYTES, { N, r, p, maxmem: 256 * N * r });
}

export async function hashPassword(
  password: string,
  { N = DEFAULT_SCRYPT_N }: HashOptions = {},
): Promise<string> {
  const salt = crypto.randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, N, R, P);
  return [ALGORITHM, N, R, P, salt.toString("base64"), hash.toString("base64")].join("$");
}

function parse(encoded: string): Parsed | undefined {
  const [algorithm, N, r, p, salt, hash, ...rest] = encoded.split("$");
  if (algorithm !== ALGORITHM || rest.length > 0 || !salt || !hash) return undefined;
  const numbers = [N, r, p].map(Number);
  if (!numbers.every((n) => Number.isSafeInteger(n) && n > 0)) return undefined;
  return {
    N: numbers[0]!,
    r: numbers[1]!,
    p: numbers[2]!,
    salt: Buffer.from(salt, "base64"),
    hash: Buffer.from(hash, "base64"),
  };
}

// A stored hash to verify against when the user does not exist, so that the response time does not
// tell an attacker which usernames are real (Django runs its hasher once for the same reason).
const dummyHashes = new Map<number, Promise<string>>();

/** Spends the same time as checking a real password of cost N, and always fails. */
export async function rejectPasswordInConstantTime(
  password: string,
  { N = DEFAULT_SCRYPT_N }: HashOptions = {},
): Promise<false> {
  let dummy = dummyHashes.get(N);
  if (!dummy) dummyHashes.set(N, (dummy = hashPassword(crypto.randomUUID(), { N })));
  await verifyPassword(password, await dummy);
  return false;
}

/**
 * Whether `password` matches the stored hash. An unusable password (or a malformed hash) takes as
 * long to refuse as a hash of cost N, as Django's verify_password does since CVE-2024-39329:
 * refusing it at once would tell that the account exists.
 */
export async function verifyPassword(
  password: string,
  encoded: string,
  options: HashOptions = {},
): Promise<boolean> {
  const parsed = parse(encoded);
  if (!parsed) return rejectPasswordInConstantTime(password, options);
  const candidate = await derive(password, parsed.salt, parsed.N, parsed.r, parsed.p);
  return candidate.length === parsed.hash.length && crypto.timingSafeEqual(candidate, parsed.hash);
}

/** True when the hash was made with weaker settings than today's: rehash it at the next login. */
export function needsRehash(encoded: string, { N = DEFAULT_SCRYPT_N }: HashOptions = {}): boolean {
  const parsed = parse(encoded);
  return parsed !== undefined && (parsed.N < N || parsed.r !== R || parsed.p !== P);
}

/** For `createsuperuser --no-input` without a password: the account exists but cannot log in. */
export function unusablePassword(): string {
  return UNUSABLE_PREFIX + crypto.randomBytes(30).toString("base64url");
}
