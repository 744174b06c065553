// SCRAM's SaltedPassword, Hi() of RFC 5802: PBKDF2 with HMAC-SHA-256 and one output block. At
// PostgreSQL's 4,096 iterations it costs 1–2 ms of CPU, and a server may ask for any count, so it
// runs on libuv's threadpool: deriving on the event loop would stall every client's queries for
// that long (PgBouncer, single-threaded, does stall).
import crypto from "node:crypto";
import { Lru } from "../../lru.ts";
import { saslprep } from "./saslprep.ts";

export const KEY_LENGTH = 32; // SHA-256 output

// Derivations running at once. libuv's threadpool has 4 threads and also resolves server host
// names and reads files: a flood of logins (or one server asking for millions of iterations) must
// leave it some. The rest wait their turn, first come first served.
const MAX_RUNNING = 2;
let running = 0;
const queued: (() => void)[] = [];

async function derive(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  if (running < MAX_RUNNING) running++;
  else await new Promise<void>((resolve) => queued.push(resolve)); // the finisher hands us its slot
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      crypto.pbkdf2(
        Buffer.from(saslprep(password), "utf8"),
        salt,
        iterations,
        KEY_LENGTH,
        "sha256",
        (err, key) => (err ? reject(err) : resolve(key)),
      ),
    );
  } finally {
    const next = queued.shift();
    if (next) next();
    else running--;
  }
}

// A known-good password (configured, or a client's once verified) against a salt that does not
// change (a server's stored secret, our per-user mock salt) always gives the same result, so each
// (password, salt, iterations) is derived once, and logins arriving together share one derivation;
// the least recently used entries go beyond the bound.
const cache = new Lru<string, Promise<Buffer>>(1024);

function cached(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = `${iterations}$${salt.toString("base64")}$${password}`;
  let salted = cache.get(key);
  if (salted === undefined) {
    salted = derive(password, salt, iterations);
    salted.catch(() => cache.delete(key)); // a failure is not remembered
    cache.set(key, salted);
  }
  return salted;
}

/**
 * SaltedPassword for `password`. `known`: the password is a known-good one, so the result may be
 * kept. Checking a password a client offers must never be cached: a wrong guess must cost what
 * PostgreSQL makes it cost.
 */
export function saltedPassword(
  password: string,
  salt: Buffer,
  iterations: number,
  known: boolean,
): Promise<Buffer> {
  return known ? cached(password, salt, iterations) : derive(password, salt, iterations);
}
