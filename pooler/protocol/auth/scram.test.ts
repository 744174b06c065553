import crypto from "node:crypto";
import pg from "pg";
import { describe, expect, inject, it, vi } from "vitest";
import { saslprep } from "./saslprep.ts";
import {
  SASL_MECHANISM,
  ScramClientSession,
  ScramError,
  ScramServerSession,
  formatScramSecret,
  parseScramSecret,
  scramSecretFromPassword,
  type ScramClientCredentials,
  type ScramSecret,
} from "./scram.ts";

// RFC 7677 section 3.
const rfc = {
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"),
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/** Runs a whole exchange between our client and our server; resolves with the server's verdict. */
async function exchange(secret: ScramSecret, credentials: ScramClientCredentials) {
  const client = new ScramClientSession(credentials);
  const server = new ScramServerSession(secret);
  const serverFirst = server.handleClientFirst(client.clientFirst());
  const result = server.handleClientFinal(await client.handleServerFirst(serverFirst));
  if (result.ok) client.verifyServerFinal(result.serverFinal);
  return result;
}

const pwSecret = await scramSecretFromPassword("pw", 4096);

/** A server session that has already answered a standard client-first-message. */
function challenged(clientFirst = "n,,n=,r=abc") {
  const server = new ScramServerSession(pwSecret);
  const serverFirst = server.handleClientFirst(clientFirst);
  return { server, nonce: /^r=([^,]+)/.exec(serverFirst)![1]! };
}

const rfcSecret = await scramSecretFromPassword(rfc.password, 4096, rfc.salt);

describe("RFC 7677 test vector", () => {
  const secret = rfcSecret;

  it("server side: accepts the RFC client proof and produces the RFC server signature", () => {
    const server = new ScramServerSession(secret, { nonce: rfc.serverNonce });
    expect(server.handleClientFirst(rfc.clientFirst)).toBe(rfc.serverFirst);
    const result = server.handleClientFinal(rfc.clientFinal);
    expect(result).toMatchObject({ ok: true, serverFinal: rfc.serverFinal });
  });

  it("client side: produces the RFC client proof and accepts the RFC server signature", async () => {
    const client = new ScramClientSession(rfc.password, { nonce: rfc.clientNonce, user: "user" });
    expect(client.clientFirst()).toBe(rfc.clientFirst);
    expect(await client.handleServerFirst(rfc.serverFirst)).toBe(rfc.clientFinal);
    expect(() => client.verifyServerFinal(rfc.serverFinal)).not.toThrow();
  });
});

describe("SCRAM secrets", () => {
  it("round-trips through format and parse", async () => {
    const secret = await scramSecretFromPassword("pw");
    expect(secret.iterations).toBe(4096);
    expect(secret.salt).toHaveLength(16);
    const text = formatScramSecret(secret);
    expect(text).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(parseScramSecret(text)).toEqual(secret);
  });

  it("uses a fresh random salt each time", async () => {
    const [a, b] = await Promise.all([scramSecretFromPassword("pw"), scramSecretFromPassword("pw")]);
    expect(a.salt.equals(b.salt)).toBe(false);
  });

  it("rejects anything that is not a well-formed secret", () => {
    const good = formatScramSecret(pwSecret);
    const [, iterSalt, keys] = good.split("$") as [string, string, string];
    const [storedKey] = keys.split(":") as [string, string];
    for (const bad of [
      "",
      "md53175bce1d3201d16594cebf9d7eb3f9d",
      good.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
      good.replace("$4096:", "$0:"),
      good.replace("$4096:", "$x:"),
      `SCRAM-SHA-256$${iterSalt}$${storedKey}`,
      `SCRAM-SHA-256$${iterSalt}$${storedKey}:AAAA`,
      `SCRAM-SHA-256$${iterSalt}$${storedKey}:${storedKey}!`,
      `${good}$extra`,
    ]) {
      expect(parseScramSecret(bad), bad).toBeNull();
    }
  });
});

const horseSecret = await scramSecretFromPassword("correct horse");

describe("SCRAM exchange between our client and our server", () => {
  const secret = horseSecret;

  it("succeeds with the password and returns the client key", async () => {
    const result = await exchange(secret, "correct horse");
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.clientKey).toHaveLength(32);
  });

  it("succeeds with a secret parsed from its text form", async () => {
    expect((await exchange(parseScramSecret(formatScramSecret(secret))!, "correct horse")).ok).toBe(true);
  });

  it("fails with a wrong password", async () => {
    const result = await exchange(secret, "wrong horse");
    expect(result).toEqual({ ok: false, reason: expect.stringContaining("wrong password") });
  });

  it("passes through: the recovered client key logs in to a server holding the same secret", async () => {
    const first = await exchange(secret, "correct horse");
    if (!first.ok) throw new Error(first.reason);
    const viaKeys = await exchange(secret, { clientKey: first.clientKey, serverKey: secret.serverKey });
    expect(viaKeys.ok).toBe(true);
    // Without the server key the server's signature cannot be checked, but the login still works.
    expect((await exchange(secret, { clientKey: first.clientKey })).ok).toBe(true);
  });

  it("pass-through keys do not fit another secret of the same password (different salt)", async () => {
    const first = await exchange(secret, "correct horse");
    if (!first.ok) throw new Error(first.reason);
    const other = await scramSecretFromPassword("correct horse");
    expect((await exchange(other, { clientKey: first.clientKey })).ok).toBe(false);
  });

  it('accepts the "y,," gs2 header and any user name ("n=*")', () => {
    // Our client always sends "n,,", so build this client's messages by hand (RFC 5802 section 3).
    const secret = pwSecret;
    const server = new ScramServerSession(secret);
    const clientFirstBare = "n=*,r=clientnonce";
    const serverFirst = server.handleClientFirst(`y,,${clientFirstBare}`);
    const nonce = /^r=([^,]+)/.exec(serverFirst)![1]!;
    const withoutProof = `c=${Buffer.from("y,,").toString("base64")},r=${nonce}`;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const salted = crypto.pbkdf2Sync("pw", secret.salt, 4096, 32, "sha256");
    const clientKey = crypto.createHmac("sha256", salted).update("Client Key").digest();
    const signature = crypto.createHmac("sha256", secret.storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    const result = server.handleClientFinal(`${withoutProof},p=${proof.toString("base64")}`);
    expect(result).toMatchObject({ ok: true, clientKey });
  });
});

describe("PBKDF2 of a known password runs once per salt and iteration count", () => {
  // Each test uses passwords of its own, so no entry left by another test can make it pass.
  const fresh = (label: string) => `${label} ${crypto.randomUUID()}`;

  /** Runs `run`; resolves with its result and how many PBKDF2 derivations it started. */
  async function countingPbkdf2<T>(run: () => Promise<T>): Promise<{ result: T; calls: number }> {
    const spy = vi.spyOn(crypto, "pbkdf2");
    try {
      return { result: await run(), calls: spy.mock.calls.length };
    } finally {
      spy.mockRestore();
    }
  }

  it("logs in to a server again without deriving its keys again; a new salt or count derives anew", async () => {
    const password = fresh("server");
    const secret = await scramSecretFromPassword(password);
    const { calls } = await countingPbkdf2(async () => {
      expect((await exchange(secret, password)).ok).toBe(true);
      expect((await exchange(secret, password)).ok).toBe(true);
      expect((await exchange(parseScramSecret(formatScramSecret(secret))!, password)).ok).toBe(true);
    });
    expect(calls).toBe(1);
    const resalted = await scramSecretFromPassword(password, 4096);
    const recounted = await scramSecretFromPassword(password, 4097, secret.salt);
    const again = await countingPbkdf2(async () => [
      (await exchange(resalted, password)).ok,
      (await exchange(recounted, password)).ok,
    ]);
    expect(again).toEqual({ result: [true, true], calls: 2 });
  });

  it("caches a configured password's secret, never the check of a password a client offers", async () => {
    const password = fresh("configured");
    const salt = crypto.randomBytes(16);
    const derive = (known: boolean) => scramSecretFromPassword(password, 4096, salt, known);
    // Logins arriving together share the one derivation still running.
    const known = await countingPbkdf2(() => Promise.all([1, 2, 3].map(() => derive(true))));
    expect(known.calls).toBe(1);
    expect(known.result[2]).toEqual(known.result[0]);
    expect((await countingPbkdf2(() => derive(true))).calls).toBe(0);
    const offered = await countingPbkdf2(() => Promise.all([1, 2, 3].map(() => derive(false))));
    expect(offered.calls).toBe(3);
    expect(offered.result[0]).toEqual(known.result[0]);
  });

  it("keeps the 1,024 most recently used derivations", async () => {
    const salt = crypto.randomBytes(16);
    const passwords = Array.from({ length: 1025 }, (_, i) => fresh(`p${i}`));
    const derive = (p: string) => scramSecretFromPassword(p, 1, salt, true);
    await derive(passwords[0]!);
    await derive(passwords[1]!);
    await Promise.all(passwords.slice(2, 1024).map(derive));
    await derive(passwords[0]!); // used again: now the most recent
    await derive(passwords[1024]!); // one over the bound: passwords[1], the least recently used, goes
    expect((await countingPbkdf2(() => derive(passwords[0]!))).calls).toBe(0);
    expect((await countingPbkdf2(() => derive(passwords[1]!))).calls).toBe(1);
  });

  it("runs at most two derivations at once and queues the rest, none lost", async () => {
    let running = 0;
    let most = 0;
    const real = crypto.pbkdf2;
    const spy = vi.spyOn(crypto, "pbkdf2").mockImplementation(((...args: Parameters<typeof real>) => {
      running++;
      most = Math.max(most, running);
      const done = args[5];
      real(args[0], args[1], args[2], args[3], args[4], (err, key) => {
        running--;
        done(err, key);
      });
    }) as typeof real);
    try {
      const salt = crypto.randomBytes(16);
      const passwords = Array.from({ length: 8 }, (_, i) => fresh(`q${i}`));
      const secrets = await Promise.all(passwords.map((p) => scramSecretFromPassword(p, 20_000, salt)));
      expect(spy).toHaveBeenCalledTimes(8);
      expect(most).toBe(2);
      // Each resolved with its own password's secret, not a neighbour's in the queue.
      for (const [i, secret] of secrets.entries()) {
        expect((await exchange(secret, passwords[i]!)).ok).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
  });
});

describe("ScramServerSession refuses bad client messages", () => {
  const secret = pwSecret;

  it("refuses channel binding (p=) with a clear error", () => {
    const server = new ScramServerSession(secret);
    expect(() => server.handleClientFirst("p=tls-server-end-point,,n=,r=abc")).toThrow(
      /channel binding is not supported.*SCRAM-SHA-256 \(without -PLUS\)/,
    );
  });

  it("refuses authorization identities, mandatory extensions and malformed first messages", () => {
    const cases: [string, RegExp][] = [
      ["n,a=admin,n=,r=abc", /authorization identities/],
      ["n,,m=ext,n=,r=abc", /mandatory extensions/],
      ["x,,n=,r=abc", /invalid channel binding flag/],
      ["n,,r=abc", /expected attribute "n="/],
      ["n,,n=", /expected attribute "r="/],
      ["n,,n=,r=", /invalid client nonce/],
      ["n,,n=,r=abc,bogus", /invalid attribute/],
      ["n=,r=abc", /missing gs2 header/],
    ];
    for (const [msg, error] of cases) {
      expect(() => new ScramServerSession(secret).handleClientFirst(msg), msg).toThrow(error);
    }
  });

  it("ignores optional extensions in client-first-message", () => {
    expect(new ScramServerSession(secret).handleClientFirst("n,,n=,r=abc,x=1")).toMatch(/^r=abc/);
  });

  it("rejects a tampered nonce", () => {
    const { server, nonce } = challenged();
    expect(() =>
      server.handleClientFinal(`c=biws,r=${nonce}x,p=${Buffer.alloc(32).toString("base64")}`),
    ).toThrow(/nonce does not match/);
  });

  it("rejects a client-final whose nonce was tampered with on the wire", async () => {
    const server = new ScramServerSession(secret);
    const client = new ScramClientSession("pw");
    const serverFirst = server.handleClientFirst(client.clientFirst());
    const final = (await client.handleServerFirst(serverFirst)).replace(/,r=([^,]+)/, ",r=$1Z");
    expect(() => server.handleClientFinal(final)).toThrow(ScramError);
  });

  it("rejects a channel-binding attribute that does not match the gs2 header", () => {
    const { server, nonce } = challenged();
    expect(() =>
      server.handleClientFinal(`c=eSws,r=${nonce},p=${Buffer.alloc(32).toString("base64")}`),
    ).toThrow(/channel binding check failed/);
  });

  it("rejects malformed proofs and misplaced attributes", () => {
    const proof = Buffer.alloc(32).toString("base64");
    const cases: [(nonce: string) => string, RegExp][] = [
      [(n) => `c=biws,r=${n}`, /proof \(p=\) must be the last attribute/],
      [(n) => `c=biws,r=${n},p=${proof},x=1`, /proof \(p=\) must be the last attribute/],
      [(n) => `c=biws,r=${n},p=AAAA`, /invalid proof/],
      [(n) => `c=biws,r=${n},p=${proof.slice(0, -1)}!`, /invalid proof/],
      [(n) => `c=biws,r=${n},bogus,p=${proof}`, /invalid attribute "bogus"/],
      [(n) => `r=${n},c=biws,p=${proof}`, /expected attribute "c="/],
    ];
    for (const [make, error] of cases) {
      const { server, nonce } = challenged();
      expect(() => server.handleClientFinal(make(nonce)), make(nonce)).toThrow(error);
    }
  });

  it("is single use and enforces message order", () => {
    const server = new ScramServerSession(secret);
    expect(() => server.handleClientFinal("c=biws,r=x,p=x")).toThrow(/unexpected/);
    const { server: s2 } = challenged();
    expect(() => s2.handleClientFirst("n,,n=,r=abc")).toThrow(/unexpected/);
  });
});

describe("ScramClientSession checks the server", () => {
  const secret = pwSecret;

  function started() {
    const client = new ScramClientSession("pw", { nonce: "cn" });
    client.clientFirst();
    return client;
  }

  it("sends an empty user name and a random nonce, like libpq", () => {
    const first = new ScramClientSession("pw").clientFirst();
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
  });

  it("escapes the optional user name", () => {
    expect(new ScramClientSession("pw", { nonce: "x", user: "a=b,c" }).clientFirst()).toBe(
      "n,,n=a=3Db=2Cc,r=x",
    );
  });

  it("rejects a server nonce that does not extend the client nonce", async () => {
    const s = secret.salt.toString("base64");
    await expect(started().handleServerFirst(`r=cn,s=${s},i=4096`)).rejects.toThrow(/does not extend/);
    await expect(started().handleServerFirst(`r=xx123,s=${s},i=4096`)).rejects.toThrow(/does not extend/);
  });

  it("rejects malformed server-first messages", async () => {
    for (const msg of [
      "",
      "r=cn1",
      "r=cn1,s=!!!!,i=4096",
      "r=cn1,s=,i=4096",
      "r=cn1,s=AAAA,i=0",
      "m=x,r=cn1",
    ]) {
      await expect(started().handleServerFirst(msg), msg).rejects.toThrow(ScramError);
    }
  });

  it("reports a server error and a wrong server signature", async () => {
    const server = new ScramServerSession(secret);
    const client = new ScramClientSession("pw");
    const serverFirst = server.handleClientFirst(client.clientFirst());
    const result = server.handleClientFinal(await client.handleServerFirst(serverFirst));
    if (!result.ok) throw new Error(result.reason);
    const forged = `v=${Buffer.alloc(32).toString("base64")}`;
    expect(() => client.verifyServerFinal(forged)).toThrow(/server signature is invalid/);

    const c2 = started();
    await c2.handleServerFirst(`r=cn1,s=${secret.salt.toString("base64")},i=4096`);
    expect(() => c2.verifyServerFinal("e=invalid-proof")).toThrow(
      /server rejected SCRAM authentication: invalid-proof/,
    );
  });

  it("validates pass-through key lengths", () => {
    expect(() => new ScramClientSession({ clientKey: Buffer.alloc(31) })).toThrow(RangeError);
    expect(() => new ScramClientSession({ clientKey: Buffer.alloc(32), serverKey: Buffer.alloc(5) })).toThrow(
      RangeError,
    );
  });

  it("advertises the mechanism name PostgreSQL uses", () => {
    expect(SASL_MECHANISM).toBe("SCRAM-SHA-256");
  });
});

describe("saslprep", () => {
  it("leaves ASCII alone, control characters included", () => {
    expect(saslprep("pencil")).toBe("pencil");
    expect(saslprep("a\u0007b")).toBe("a\u0007b");
  });

  it("maps non-ASCII spaces to a space, removes invisible characters and applies NFKC", () => {
    expect(saslprep("I\u00ADX")).toBe("IX");
    expect(saslprep("\u2168")).toBe("IX");
    expect(saslprep("pass\u00A0word")).toBe("pass word");
    expect(saslprep("\uFF50\uFF57")).toBe("pw");
    expect(saslprep("e\u0301")).toBe("\u00E9");
  });

  it("falls back to the raw password when SASLprep fails, as PostgreSQL does", () => {
    expect(saslprep("\uFB01\u0007")).toBe("\uFB01\u0007"); // prohibited control character
    expect(saslprep("\uE000\uFB01")).toBe("\uE000\uFB01"); // private use
    expect(saslprep("\uFB01\u0378")).toBe("\uFB01\u0378"); // unassigned
    expect(saslprep("\u00AD")).toBe("\u00AD"); // empty after mapping
  });
});

describe("SCRAM secrets stored by PostgreSQL 13", () => {
  // Non-ASCII passwords check SASLprep: PostgreSQL prepares the password when hashing it, so our
  // client (which prepares the raw password) must derive the same keys. Each either changes under
  // SASLprep or makes it fail, where PostgreSQL falls back to the raw password.
  const passwords = [
    "secret-pw",
    "I\u00ADX",
    "\u2168",
    "pass\u00A0word",
    "\uFF50\uFF57",
    "\uFB01\u0007",
    "\uE000\uFB01",
    "\uFB01\u0378",
  ];

  it("are parsed, and our client logs in against them with the password", async () => {
    const client = new pg.Client({ connectionString: inject("pgAdminUrl") });
    await client.connect();
    try {
      await client.query("SET password_encryption = 'scram-sha-256'");
      for (const [i, password] of passwords.entries()) {
        const role = `auth_scram_u${i}`;
        await client.query(`DROP ROLE IF EXISTS ${role}`);
        await client.query(`CREATE ROLE ${role} LOGIN PASSWORD ${client.escapeLiteral(password)}`);
        const r = await client.query<{ rolpassword: string }>(
          "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
          [role],
        );
        await client.query(`DROP ROLE ${role}`);
        const stored = r.rows[0]!.rolpassword;
        const secret = parseScramSecret(stored);
        expect(secret, `${JSON.stringify(password)}: ${stored}`).not.toBeNull();
        expect(formatScramSecret(secret!)).toBe(stored);
        expect(await scramSecretFromPassword(password, secret!.iterations, secret!.salt)).toEqual(secret);
        expect((await exchange(secret!, password)).ok, JSON.stringify(password)).toBe(true);
        expect((await exchange(secret!, `${password}x`)).ok).toBe(false);
      }
    } finally {
      await client.end();
    }
  });
});
