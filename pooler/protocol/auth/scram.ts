// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, for both ends of the pooler:
// ScramServerSession verifies a client against a stored secret, ScramClientSession logs the pooler
// in to a PostgreSQL server. No I/O: the caller moves the strings in and out of AuthenticationSASL* /
// SASLInitialResponse / SASLResponse messages. What needs PBKDF2 returns a promise, since that runs
// off the event loop (salted-password.ts).
//
// PostgreSQL specifics followed here:
// - the user name in client-first-message is ignored (it comes from the startup packet); libpq sends
//   "n=", some drivers "n=*";
// - channel binding is not supported (we only advertise SCRAM-SHA-256, never -PLUS), so the gs2
//   header must be "n,," or "y,,"; "p=..." and authorization identities ("a=...") are refused;
// - nonces are 18 random bytes in base64 (SCRAM_RAW_NONCE_LEN), salts 16 bytes, 4096 iterations;
// - passwords go through SASLprep with PostgreSQL's fallback to the raw password (saslprep.ts).
//
// Errors: a malformed or out-of-order message, or a refused feature, throws (or rejects with) ScramError (the caller
// answers ErrorResponse 08P01, protocol violation). A well-formed client-final whose proof is wrong
// is not an exception but { ok: false } (ErrorResponse 28P01, invalid password).
import crypto from "node:crypto";
import { KEY_LENGTH, saltedPassword } from "./salted-password.ts";

export const SASL_MECHANISM = "SCRAM-SHA-256";

/** What PostgreSQL stores in pg_authid.rolpassword (and PgBouncer in userlist.txt). */
export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  /** H(ClientKey): verifies a client proof without being enough to forge one. */
  storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"): signs the server-final message. */
  serverKey: Buffer;
}

/** A malformed, unexpected or unsupported SCRAM message; the message says which and why. */
export class ScramError extends Error {
  override name = "ScramError";
}

const NONCE_BYTES = 18;
const DEFAULT_SALT_BYTES = 16;
const DEFAULT_ITERATIONS = 4096;
// What our client sends: no channel binding, no authorization identity.
const GS2_HEADER = "n,,";

// RFC 5802 "printable": any ASCII from 0x21 to 0x7E except ",", which separates attributes.
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
// Node's base64 decoder silently skips garbage; SCRAM values must be canonical base64.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EXTENSION = /^[A-Za-z]=/;
const POSITIVE_INT = /^[1-9][0-9]*$/;
const SECRET = /^SCRAM-SHA-256\$([0-9]+):([^$:]+)\$([^$:]+):([^$:]+)$/;

function decodeBase64(s: string): Buffer | null {
  return BASE64.test(s) ? Buffer.from(s, "base64") : null;
}

function parsePositiveInt(s: string): number | null {
  if (!POSITIVE_INT.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

function hmac(key: Buffer, data: string): Buffer {
  return crypto.createHmac("sha256", key).update(data, "utf8").digest();
}

function sha256(data: Buffer): Buffer {
  return crypto.createHash("sha256").update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function randomNonce(): string {
  return crypto.randomBytes(NONCE_BYTES).toString("base64");
}

function checkNonce(nonce: string, what: string): string {
  if (!PRINTABLE.test(nonce)) {
    throw new ScramError(`invalid ${what}: it must be non-empty printable ASCII without ","`);
  }
  return nonce;
}

/** The value of `part` if it is the attribute `name=value`, else a ScramError about `message`. */
function attribute(part: string | undefined, name: string, message: string): string {
  if (part === undefined || !part.startsWith(`${name}=`)) {
    throw new ScramError(`malformed SCRAM ${message}: expected attribute "${name}="`);
  }
  return part.slice(name.length + 1);
}

// Optional extensions after the mandatory attributes are allowed by RFC 5802 and ignored, as
// PostgreSQL does; a mandatory extension ("m=") before them is refused since we know none.
function checkExtensions(parts: string[], message: string): void {
  for (const part of parts) {
    if (!EXTENSION.test(part)) {
      throw new ScramError(`malformed SCRAM ${message}: invalid attribute "${part}"`);
    }
  }
}

function refuseMandatoryExtension(part: string | undefined): void {
  if (part?.startsWith("m=")) throw new ScramError("SCRAM mandatory extensions (m=) are not supported");
}

/** Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`; null if it is not one. */
export function parseScramSecret(s: string): ScramSecret | null {
  const m = SECRET.exec(s);
  if (!m) return null;
  const iterations = parsePositiveInt(m[1]!);
  const salt = decodeBase64(m[2]!);
  const storedKey = decodeBase64(m[3]!);
  const serverKey = decodeBase64(m[4]!);
  if (iterations === null || !salt || salt.length === 0) return null;
  if (storedKey?.length !== KEY_LENGTH || serverKey?.length !== KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

export function formatScramSecret(secret: ScramSecret): string {
  const b64 = (b: Buffer) => b.toString("base64");
  return `SCRAM-SHA-256$${secret.iterations}:${b64(secret.salt)}$${b64(secret.storedKey)}:${b64(secret.serverKey)}`;
}

/**
 * The secret PostgreSQL would store for `password` with this salt and iteration count. `known`: the
 * password is a known-good one (configured, or verified), so the derivation may be cached.
 */
export async function scramSecretFromPassword(
  password: string,
  iterations = DEFAULT_ITERATIONS,
  salt: Buffer = crypto.randomBytes(DEFAULT_SALT_BYTES),
  known = false,
): Promise<ScramSecret> {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError("iterations must be a positive integer");
  }
  if (salt.length === 0) throw new RangeError("salt must not be empty");
  const salted = await saltedPassword(password, salt, iterations, known);
  return {
    iterations,
    salt,
    storedKey: sha256(hmac(salted, "Client Key")),
    serverKey: hmac(salted, "Server Key"),
  };
}

export type ScramServerResult =
  { ok: true; serverFinal: string; clientKey: Buffer } | { ok: false; reason: string };

/** One SCRAM exchange in which the pooler authenticates a client. Single use. */
export class ScramServerSession {
  readonly #secret: ScramSecret;
  readonly #serverNonce: string;
  #state: "initial" | "challenged" | "done" = "initial";
  #gs2Header = "";
  #clientFirstBare = "";
  #serverFirst = "";
  #nonce = "";

  /** `options.nonce` replaces the random server nonce; for test vectors only. */
  constructor(secret: ScramSecret, options: { nonce?: string } = {}) {
    this.#secret = secret;
    this.#serverNonce = checkNonce(options.nonce ?? randomNonce(), "server nonce");
  }

  /** Takes the SASLInitialResponse data, returns the AuthenticationSASLContinue data. */
  handleClientFirst(msg: string): string {
    if (this.#state !== "initial") throw new ScramError("unexpected SCRAM client-first-message");
    this.#state = "done"; // any failure below ends the exchange
    const m = /^([^,]*),([^,]*),(.*)$/s.exec(msg);
    if (!m) throw new ScramError("malformed SCRAM client-first-message: missing gs2 header");
    const cbindFlag = m[1]!;
    const authzid = m[2]!;
    const bare = m[3]!;

    if (cbindFlag.startsWith("p=")) {
      throw new ScramError(
        `channel binding is not supported: the client asked for "${cbindFlag}" but only ${SASL_MECHANISM} (without -PLUS) was offered`,
      );
    }
    // "y" means the client could do channel binding but believes we cannot, which is true.
    if (cbindFlag !== "n" && cbindFlag !== "y") {
      throw new ScramError(
        `malformed SCRAM client-first-message: invalid channel binding flag "${cbindFlag}"`,
      );
    }
    if (authzid !== "") {
      if (authzid.startsWith("a=")) {
        throw new ScramError("SCRAM authorization identities (a=) are not supported");
      }
      throw new ScramError("malformed SCRAM client-first-message: invalid authorization identity field");
    }

    const parts = bare.split(",");
    refuseMandatoryExtension(parts[0]);
    attribute(parts[0], "n", "client-first-message"); // the user name comes from the startup packet
    const clientNonce = checkNonce(attribute(parts[1], "r", "client-first-message"), "client nonce");
    checkExtensions(parts.slice(2), "client-first-message");

    this.#gs2Header = `${cbindFlag},,`;
    this.#clientFirstBare = bare;
    this.#nonce = clientNonce + this.#serverNonce;
    const { salt, iterations } = this.#secret;
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString("base64")},i=${iterations}`;
    this.#state = "challenged";
    return this.#serverFirst;
  }

  /**
   * Takes the SASLResponse data. On success returns the AuthenticationSASLFinal data and the
   * client's ClientKey, which lets the pooler log in to a server holding the same secret.
   */
  handleClientFinal(msg: string): ScramServerResult {
    if (this.#state !== "challenged") throw new ScramError("unexpected SCRAM client-final-message");
    this.#state = "done";
    const parts = msg.split(",");

    const cbind = decodeBase64(attribute(parts[0], "c", "client-final-message"));
    if (!cbind?.equals(Buffer.from(this.#gs2Header, "ascii"))) {
      throw new ScramError("SCRAM channel binding check failed: c= does not match the gs2 header");
    }
    if (attribute(parts[1], "r", "client-final-message") !== this.#nonce) {
      throw new ScramError("malformed SCRAM client-final-message: nonce does not match");
    }
    // The proof must be the last attribute; anything between r= and p= is an ignored extension.
    const proofIndex = parts.findIndex((p, i) => i >= 2 && p.startsWith("p="));
    if (proofIndex !== parts.length - 1) {
      throw new ScramError("malformed SCRAM client-final-message: the proof (p=) must be the last attribute");
    }
    checkExtensions(parts.slice(2, proofIndex), "client-final-message");
    const proofPart = parts[proofIndex]!;
    const proof = decodeBase64(proofPart.slice(2));
    if (proof?.length !== KEY_LENGTH) {
      throw new ScramError("malformed SCRAM client-final-message: invalid proof");
    }

    const withoutProof = msg.slice(0, msg.length - proofPart.length - 1);
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.#secret.storedKey, authMessage));
    if (!crypto.timingSafeEqual(sha256(clientKey), this.#secret.storedKey)) {
      return { ok: false, reason: "SCRAM proof does not match the stored secret (wrong password)" };
    }
    const serverSignature = hmac(this.#secret.serverKey, authMessage);
    return { ok: true, serverFinal: `v=${serverSignature.toString("base64")}`, clientKey };
  }
}

/**
 * What the pooler logs in to a server with: the password, or the keys recovered from a client's
 * SCRAM exchange (pass-through, as PgBouncer does) which make PBKDF2 unnecessary.
 */
export type ScramClientCredentials = string | { clientKey: Buffer; serverKey?: Buffer };

// RFC 5802 saslname: "=" and "," are escaped.
function escapeSaslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/** One SCRAM exchange in which the pooler authenticates to a PostgreSQL server. Single use. */
export class ScramClientSession {
  readonly #credentials: ScramClientCredentials;
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  #state: "initial" | "started" | "proved" | "done" = "initial";
  #expectedServerSignature: Buffer | undefined;

  /**
   * `options.nonce` replaces the random client nonce (test vectors only). `options.user` fills
   * "n="; PostgreSQL ignores it, so the default is empty, like libpq.
   */
  constructor(credentials: ScramClientCredentials, options: { nonce?: string; user?: string } = {}) {
    if (typeof credentials !== "string") {
      if (credentials.clientKey.length !== KEY_LENGTH) {
        throw new RangeError(`clientKey must be ${KEY_LENGTH} bytes`);
      }
      if (credentials.serverKey && credentials.serverKey.length !== KEY_LENGTH) {
        throw new RangeError(`serverKey must be ${KEY_LENGTH} bytes`);
      }
    }
    this.#credentials = credentials;
    this.#clientNonce = checkNonce(options.nonce ?? randomNonce(), "client nonce");
    this.#clientFirstBare = `n=${escapeSaslName(options.user ?? "")},r=${this.#clientNonce}`;
  }

  /** The SASLInitialResponse data. */
  clientFirst(): string {
    if (this.#state !== "initial") throw new ScramError("SCRAM client-first-message already sent");
    this.#state = "started";
    return `${GS2_HEADER}${this.#clientFirstBare}`;
  }

  /** Takes the AuthenticationSASLContinue data, resolves with the SASLResponse data. */
  async handleServerFirst(msg: string): Promise<string> {
    if (this.#state !== "started") throw new ScramError("unexpected SCRAM server-first-message");
    this.#state = "done";
    const parts = msg.split(",");
    refuseMandatoryExtension(parts[0]);
    const nonce = checkNonce(attribute(parts[0], "r", "server-first-message"), "server nonce");
    if (nonce.length <= this.#clientNonce.length || !nonce.startsWith(this.#clientNonce)) {
      throw new ScramError(
        "malformed SCRAM server-first-message: the nonce does not extend the client nonce",
      );
    }
    const salt = decodeBase64(attribute(parts[1], "s", "server-first-message"));
    if (!salt || salt.length === 0) {
      throw new ScramError("malformed SCRAM server-first-message: invalid salt");
    }
    const iterations = parsePositiveInt(attribute(parts[2], "i", "server-first-message"));
    if (iterations === null) {
      throw new ScramError("malformed SCRAM server-first-message: invalid iteration count");
    }
    checkExtensions(parts.slice(3), "server-first-message");

    let clientKey: Buffer;
    let serverKey: Buffer | undefined;
    if (typeof this.#credentials === "string") {
      const salted = await saltedPassword(this.#credentials, salt, iterations, true);
      clientKey = hmac(salted, "Client Key");
      serverKey = hmac(salted, "Server Key");
    } else {
      ({ clientKey, serverKey } = this.#credentials);
    }

    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString("base64")},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${msg},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.#expectedServerSignature = serverKey && hmac(serverKey, authMessage);
    this.#state = "proved";
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /**
   * Takes the AuthenticationSASLFinal data; throws if the server reported an error (e=) or its
   * signature is wrong, i.e. it does not know the password. In pass-through mode without a
   * serverKey the signature cannot be computed and only the message's form is checked.
   */
  verifyServerFinal(msg: string): void {
    if (this.#state !== "proved") throw new ScramError("unexpected SCRAM server-final-message");
    this.#state = "done";
    const first = msg.split(",", 1)[0];
    if (first?.startsWith("e=")) {
      throw new ScramError(`server rejected SCRAM authentication: ${first.slice(2)}`);
    }
    const signature = decodeBase64(attribute(first, "v", "server-final-message"));
    if (!signature) throw new ScramError("malformed SCRAM server-final-message: invalid signature");
    const expected = this.#expectedServerSignature;
    if (expected && !(signature.length === expected.length && crypto.timingSafeEqual(signature, expected))) {
      throw new ScramError("SCRAM server signature is invalid: the server does not hold this password");
    }
  }
}
