// TLS on both sides of the pooler, as PgBouncer: client_tls_* (psql and node-postgres over TLS,
// refusals, client certificates, cancel requests) and server_tls_* (against a PostgreSQL of our own
// with ssl = on). Certificates are made by openssl for each run (test/support/certs.ts).
import dns from "node:dns";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  cancelRequest,
  parseErrorFields,
  sslRequest,
  startupMessage,
} from "../../pooler/protocol/messages.ts";
import { sendCancelRequest } from "../../pooler/cancel-request.ts";
import { formatUserlistLine } from "../../pooler/config/index.ts";
import { connectTls } from "../../pooler/tls.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { cancelKeyOf, cancelledSleep, connect, errorOf, psql, rawExchange } from "../support/clients.ts";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { hasPgBouncer, startPgBouncer } from "../support/pgbouncer.ts";
import { freePort } from "../support/ports.ts";
import { spawnPooler } from "../support/pooler-process.ts";
import { openings, relay } from "../support/relay.ts";
import { withTestPooler, type TestPooler } from "../support/pooler.ts";
import { waitFor } from "../support/wait.ts";

let certs: TestCerts;
beforeAll(() => {
  certs = makeCerts();
});
afterAll(() => certs.remove());

/** A pooler URL with libpq / node-postgres connection parameters appended. */
function withParams(url: string, params: Record<string, string>): string {
  return `${url}?${new URLSearchParams(params).toString()}`;
}

/** libpq's verify-full against the pooler: the certificate names localhost, the pooler listens on 127.0.0.1. */
function verifyFull(p: TestPooler, rootCert: string, client = true): string {
  const url = p.url().replace("127.0.0.1", "localhost");
  return withParams(url, {
    hostaddr: "127.0.0.1",
    sslmode: "verify-full",
    sslrootcert: rootCert,
    ...(client ? { sslcert: certs.clientCert, sslkey: certs.clientKey } : {}),
  });
}

async function tlsColumn(admin: pg.Client, show: "CLIENTS" | "SERVERS"): Promise<string[]> {
  const { rows } = await admin.query<{ tls: string }>(`SHOW ${show}`);
  return rows.map((r) => r.tls);
}

/** SSLRequest, then a TLS handshake as a client with `opts`; rejects if the handshake fails. */
async function tlsHandshake(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const raw = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => raw.once("connect", r));
  raw.write(sslRequest());
  const answer = await new Promise<Buffer>((r) => raw.once("data", r));
  expect(answer.toString()).toBe("S");
  const secure = tls.connect({
    socket: raw,
    ca: fs.readFileSync(certs.caCert),
    servername: "localhost",
    ...opts,
  });
  await new Promise((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", reject);
  });
  secure.on("error", () => undefined);
  return secure;
}

/** What a TLS client with `opts` negotiated, in `describe`'s words, or why its handshake failed. */
async function negotiated(
  port: number,
  opts: tls.ConnectionOptions,
  describe: (secure: tls.TLSSocket) => string,
): Promise<string> {
  try {
    const secure = await tlsHandshake(port, opts);
    const got = describe(secure);
    secure.destroy();
    return got;
  } catch (err) {
    return `refused: ${(err as Error).message.split("\n")[0]!.replace(/^.*:(ssl\/tls alert [a-z ]+):.*$/, "$1")}`;
  }
}

/** A TLS 1.2 client offering only `ciphers` (and `ecdhCurve`): the key exchange it got, or why it failed. */
function keyExchange(port: number, ciphers: string, ecdhCurve?: string): Promise<string> {
  return negotiated(
    port,
    { maxVersion: "TLSv1.2", ciphers, ...(ecdhCurve ? { ecdhCurve } : {}) },
    (secure) => {
      const key = secure.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number };
      return `${secure.getCipher().name} ${key.type ?? "?"} ${key.name ?? key.size ?? "?"}`;
    },
  );
}

const clientTls = (mode: string): Record<string, string> => ({
  CLIENT_TLS_SSLMODE: mode,
  CLIENT_TLS_KEY_FILE: certs.serverKey,
  CLIENT_TLS_CERT_FILE: certs.serverCert,
  CLIENT_TLS_CA_FILE: certs.caCert,
});

/** Our environment settings as PgBouncer's ini keys. */
const iniKeys = (env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k.toLowerCase(), v]));

/**
 * With the RSA key: DHE suites need one, and in TLS 1.2 a client's curves also limit the ECDSA
 * certificates it accepts (P-256 here), which would mix into the ECDHE curve tests.
 */
const rsaClientTls = (): Record<string, string> => ({
  ...clientTls("require"),
  CLIENT_TLS_KEY_FILE: certs.rsaServerKey,
  CLIENT_TLS_CERT_FILE: certs.rsaServerCert,
});

describe("client side TLS", () => {
  it("require: psql and node-postgres get TLS, SHOW CLIENTS shows it, a plaintext client is refused", () =>
    withTestPooler(clientTls("require"), async (p) => {
      const info = await psql(withParams(p.url(), { sslmode: "require" }), "\\conninfo");
      expect(info.stdout).toMatch(/SSL connection \(protocol: TLSv1\.3, cipher: TLS_\w+/);

      const admin = await connect(p.url("pgbouncer"), { ssl: { rejectUnauthorized: false } });
      try {
        const shown = await tlsColumn(admin, "CLIENTS");
        console.log(`client tls column: ${shown.join(", ")}`);
        expect(shown).toEqual([expect.stringMatching(/^TLSv1\.3\/TLS_AES_256_GCM_SHA384$/)]);
      } finally {
        await admin.end();
      }

      const refused = await errorOf(connect(p.url()));
      expect(refused.message).toBe("SSL required");
      expect(refused.code).toBe("28000");
      const plain = await errorOf(psql(withParams(p.url(), { sslmode: "disable" }), "SELECT 1"));
      expect(plain.message).toContain("SSL required");
    }));

  it("verify-full: a client certificate signed by client_tls_ca_file is required; a wrong CA fails psql", () =>
    withTestPooler(clientTls("verify-full"), async (p) => {
      const ok = await psql(verifyFull(p, certs.caCert), "SELECT current_user");
      expect(ok.stdout.trim()).toBe("postgres");

      const noCert = await errorOf(psql(verifyFull(p, certs.caCert, false), "SELECT 1"));
      expect(noCert.message).toContain("FATAL:  connection requires a valid client certificate");
      const wrongCa = await errorOf(psql(verifyFull(p, certs.otherCaCert), "SELECT 1"));
      expect(wrongCa.message).toMatch(/certificate verify failed/);
      // a client certificate the CA did not sign is refused, even with the right name in it
      const lookAlike = `${verifyFull(p, certs.caCert, false)}&${new URLSearchParams({
        sslcert: certs.otherClientCert,
        sslkey: certs.otherClientKey,
      }).toString()}`;
      const forged = await errorOf(psql(lookAlike, "SELECT 1"));
      expect(forged.message).toContain("FATAL:  connection requires a valid client certificate");
      const refusals = p.logs.filter((l) => l.msg === "client certificate refused").map((l) => l.why);
      expect(refusals).toHaveLength(2);
      expect(refusals[1]).toMatch(/^[A-Z_]+$/); // OpenSSL's reason, e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY

      // node-postgres, a driver other than libpq, with the same files
      const c = await connect(p.url().replace("127.0.0.1", "localhost"), {
        ssl: {
          ca: fs.readFileSync(certs.caCert),
          cert: fs.readFileSync(certs.clientCert),
          key: fs.readFileSync(certs.clientKey),
        },
      });
      try {
        expect((await c.query("SELECT 41 + 1 AS n")).rows[0].n).toBe(42);
      } finally {
        await c.end();
      }
    }));

  it.skipIf(!hasPgBouncer())(
    "auth_type cert wants the user in the auth file too, and refuses in PgBouncer 1.18's words",
    async () => {
      // the client certificate says CN=postgres; the auth file lacks postgres, has report
      const authFile = path.join(certs.dir, "cert-userlist.txt");
      fs.writeFileSync(authFile, '"report" "report-pw"\n', { mode: 0o644 });
      const settings = clientTls("verify-full");
      const refusals = async (port: number): Promise<string[]> => {
        const ssl = {
          ca: fs.readFileSync(certs.caCert),
          cert: fs.readFileSync(certs.clientCert),
          key: fs.readFileSync(certs.clientKey),
        };
        const refusal = async (user: string): Promise<string> => {
          const err = await errorOf(connect(`postgresql://${user}@localhost:${port}/app`, { ssl }));
          return `${user}: ${err.code} ${err.message}`;
        };
        return [await refusal("postgres"), await refusal("report")];
      };
      // a DATABASE_URL without a login: its user would join the auth file's
      const database = `postgresql://127.0.0.1:${inject("pgPort")}/app`;
      const ours = await withTestPooler(
        { ...settings, DATABASE_URL: database, AUTH_TYPE: "cert", AUTH_FILE: authFile },
        (p) => refusals(p.port),
      );
      const theirs = await startPgBouncer(
        { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
        {
          ...iniKeys(settings),
          auth_type: "cert",
          auth_file: authFile,
        },
      );
      try {
        // PostgreSQL's SQLSTATE, where PgBouncer sends 08P01 for all of its own refusals
        expect(ours).toEqual([
          "postgres: 28000 certificate authentication failed",
          "report: 28000 certificate authentication failed",
        ]);
        const words = (refusals: string[]): string[] => refusals.map((r) => r.replace(/ \w{5} /, " "));
        expect(words(ours)).toEqual(words(await refusals(theirs.port)));
      } finally {
        await theirs.stop();
      }
    },
  );

  it.skipIf(!hasPgBouncer())(
    "verify-ca: a valid client certificate naming no user (no CommonName) serves a password login, as in PgBouncer 1.18",
    async () => {
      const settings = clientTls("verify-ca");
      const ssl = {
        ca: fs.readFileSync(certs.caCert),
        cert: fs.readFileSync(certs.anonymousClientCert),
        key: fs.readFileSync(certs.anonymousClientKey),
      };
      const login = async (port: number): Promise<string> => {
        const c = await connect(`postgresql://postgres:postgres@localhost:${port}/app`, { ssl });
        try {
          return (await c.query<{ u: string }>("SELECT current_user AS u")).rows[0]!.u;
        } finally {
          await c.end();
        }
      };
      const theirs = await startPgBouncer(
        { app: `host=127.0.0.1 port=${inject("pgPort")} dbname=app` },
        iniKeys(settings),
      );
      try {
        expect(await login(theirs.port)).toBe("postgres");
      } finally {
        await theirs.stop();
      }
      expect(await withTestPooler(settings, (p) => login(p.port))).toBe("postgres");
    },
  );

  it("a certificate's verdict holds for its handshake only: no renegotiation, no session to resume", () =>
    withTestPooler(clientTls("verify-full"), async (p) => {
      const handshake = (opts: tls.ConnectionOptions): Promise<tls.TLSSocket> => tlsHandshake(p.port, opts);
      // TLS 1.2 with a good certificate, then a second handshake (which could bring another one)
      const first = await handshake({
        maxVersion: "TLSv1.2",
        cert: fs.readFileSync(certs.clientCert),
        key: fs.readFileSync(certs.clientKey),
      });
      const outcome = await new Promise<string>((r) => {
        first.renegotiate({}, (err) => r(err ? err.message : "renegotiated"));
        first.once("error", (err) => r(err.message));
        first.once("close", () => r("closed"));
      });
      expect(outcome).toMatch(/no renegotiation|closed/);
      first.destroy();
      // TLS 1.3 without a certificate: refused; coming back on its session changes nothing (a resumed
      // session has no certificate, yet Node calls it authorized)
      const refusedFor = async (secure: tls.TLSSocket): Promise<string> => {
        secure.write(startupMessage({ user: "postgres", database: "app" }));
        const reply = await new Promise<Buffer>((r) => secure.once("data", r));
        return reply[0] === 0x45
          ? (parseErrorFields(reply).get("M") ?? "")
          : `got ${String.fromCharCode(reply[0]!)}`;
      };
      const second = await handshake({ minVersion: "TLSv1.3" });
      const session = new Promise<Buffer>((r) => second.once("session", r));
      expect(await refusedFor(second)).toBe("connection requires a valid client certificate");
      const ticket = await Promise.race([session, new Promise<undefined>((r) => setTimeout(r, 500))]);
      second.destroy();
      if (ticket !== undefined) {
        const resumed = await handshake({ minVersion: "TLSv1.3", session: ticket });
        expect(resumed.isSessionReused()).toBe(false); // SSL_OP_NO_TICKET: nothing to resume from
        expect(await refusedFor(resumed)).toBe("connection requires a valid client certificate");
        resumed.destroy();
      }
    }));

  it("client_tls_dheparams: none refuses a TLS 1.2 client offering only DHE, auto takes it (2048-bit), legacy is 1024-bit", async () => {
    const dhe = "DHE-RSA-AES256-GCM-SHA384";
    const got: Record<string, string> = {};
    for (const dheparams of ["none", "auto", undefined]) {
      const env = {
        ...rsaClientTls(),
        ...(dheparams ? { CLIENT_TLS_DHEPARAMS: dheparams } : {}),
      };
      await withTestPooler(env, async (p) => {
        got[dheparams ?? "(default)"] = await keyExchange(p.port, dhe);
        // ECDHE is untouched
        expect(await keyExchange(p.port, "ECDHE-RSA-AES256-GCM-SHA384")).toMatch(
          /^ECDHE-RSA-AES256-GCM-SHA384 ECDH /,
        );
      });
    }
    // 1024-bit DH is below OpenSSL's default security level on both sides: lowered with @SECLEVEL=1
    const legacy = {
      ...rsaClientTls(),
      CLIENT_TLS_DHEPARAMS: "legacy",
      CLIENT_TLS_CIPHERS: "HIGH:!aNULL:@SECLEVEL=1",
    };
    await withTestPooler(legacy, async (p) => {
      got.legacy = await keyExchange(p.port, `${dhe}:@SECLEVEL=1`);
    });
    console.log(`TLS 1.2 client offering only ${dhe}: ${JSON.stringify(got)}`);
    expect(got).toEqual({
      none: "refused: ssl/tls alert handshake failure",
      auto: `${dhe} DH 2048`,
      "(default)": `${dhe} DH 2048`,
      legacy: `${dhe} DH 1024`,
    });
  });

  it("client_tls_ecdhcurve: a client offering only another curve is refused, in TLS 1.2 and 1.3; SET changes it online", () =>
    withTestPooler({ ...rsaClientTls(), CLIENT_TLS_ECDHCURVE: "secp384r1" }, async (p) => {
      const ecdhe = "ECDHE-RSA-AES256-GCM-SHA384";
      expect(await keyExchange(p.port, ecdhe, "secp384r1")).toBe(`${ecdhe} ECDH secp384r1`);
      expect(await keyExchange(p.port, ecdhe, "X25519")).toBe("refused: ssl/tls alert handshake failure");
      await expect(tlsHandshake(p.port, { minVersion: "TLSv1.3", ecdhCurve: "X25519" })).rejects.toThrow(
        /handshake failure/,
      );
      const admin = await connect(p.url("pgbouncer"), { ssl: { rejectUnauthorized: false } });
      try {
        expect((await admin.query("SHOW CONFIG")).rows.filter((r) => /dhe|ecdh/.test(r.key))).toEqual([
          { key: "client_tls_dheparams", value: "auto", default: "auto", changeable: "yes" },
          { key: "client_tls_ecdhcurve", value: "secp384r1", default: "auto", changeable: "yes" },
        ]);
        await admin.query("SET client_tls_ecdhcurve = 'X25519'");
      } finally {
        await admin.end();
      }
      expect(await keyExchange(p.port, ecdhe, "X25519")).toBe(`${ecdhe} ECDH X25519`);
      expect(await keyExchange(p.port, ecdhe, "secp384r1")).toBe("refused: ssl/tls alert handshake failure");
    }));

  it("client_tls13_ciphers (PgBouncer 1.25): only the suites named serve TLS 1.3, TLS 1.2 keeps client_tls_ciphers; SET changes it online", () =>
    withTestPooler(
      { ...clientTls("require"), CLIENT_TLS13_CIPHERS: "TLS_CHACHA20_POLY1305_SHA256" },
      async (p) => {
        const suite = (opts: tls.ConnectionOptions) =>
          negotiated(p.port, opts, (secure) => secure.getCipher().name);
        expect(await suite({ minVersion: "TLSv1.3" })).toBe("TLS_CHACHA20_POLY1305_SHA256");
        expect(await suite({ minVersion: "TLSv1.3", ciphers: "TLS_AES_256_GCM_SHA384" })).toBe(
          "refused: ssl/tls alert handshake failure",
        );
        expect(await suite({ maxVersion: "TLSv1.2" })).toMatch(/^ECDHE-/);
        const admin = await connect(p.url("pgbouncer"), { ssl: { rejectUnauthorized: false } });
        try {
          await admin.query("SET client_tls13_ciphers = 'TLS_AES_128_GCM_SHA256'");
          const refused = await errorOf(
            admin.query("SET client_tls13_ciphers = 'ECDHE-RSA-AES128-GCM-SHA256'"),
          );
          expect(refused.message).toMatch(
            /^client_tls13_ciphers: expected TLS 1\.3 suites separated by colons/,
          );
          const ccm8 = await errorOf(admin.query("SET client_tls13_ciphers = 'TLS_AES_128_CCM_8_SHA256'"));
          expect(ccm8.message).toMatch(
            /^client_tls13_ciphers: TLS_AES_128_CCM_8_SHA256 alone leaves TLS 1\.3 clients no suite/,
          );
        } finally {
          await admin.end();
        }
        expect(await suite({ minVersion: "TLSv1.3" })).toBe("TLS_AES_128_GCM_SHA256");
      },
    ));

  it("refuses plaintext sent behind an SSLRequest (CVE-2021-23214), whatever the answer would be", async () => {
    const sneaked = Buffer.concat([sslRequest(), startupMessage({ user: "postgres", database: "app" })]);
    for (const env of [clientTls("prefer"), {}]) {
      const reply = await withTestPooler(env, (p) => rawExchange(p.port, sneaked, 2000));
      expect(String.fromCharCode(reply[0]!)).toBe("E"); // neither 'S' nor 'N': nothing was answered
      const fields = parseErrorFields(reply);
      expect(fields.get("C")).toBe("08P01");
      expect(fields.get("M")).toBe("received unencrypted data after SSL request");
    }
  });

  it("direct TLS (sslnegotiation=direct): node-postgres logs in without an SSLRequest, client certificates still verify", () =>
    withTestPooler(clientTls("verify-full"), async (p) => {
      const direct = { sslnegotiation: "direct" as const };
      const ssl = {
        ca: fs.readFileSync(certs.caCert),
        servername: "localhost",
        cert: fs.readFileSync(certs.clientCert),
        key: fs.readFileSync(certs.clientKey),
      };
      const c = await connect(p.url(), { ...direct, ssl });
      try {
        expect((await c.query("SELECT current_user AS u")).rows[0].u).toBe("postgres");
      } finally {
        await c.end();
      }
      const admin = await connect(p.url("pgbouncer"), { ...direct, ssl });
      try {
        expect(await tlsColumn(admin, "CLIENTS")).toEqual([expect.stringMatching(/^TLSv1\.3\//)]);
      } finally {
        await admin.end();
      }
      const noCert = await errorOf(
        connect(p.url(), { ...direct, ssl: { ca: ssl.ca, servername: "localhost" } }),
      );
      expect(noCert.message).toBe("connection requires a valid client certificate");

      // the handshake is the connection's first bytes: nothing is answered in plaintext before it
      const raw = tls.connect({ host: "127.0.0.1", port: p.port, ...ssl, ALPNProtocols: ["postgresql"] });
      await new Promise((resolve, reject) => {
        raw.once("secureConnect", resolve);
        raw.once("error", reject);
      });
      expect(raw.alpnProtocol).toBe("postgresql");
      raw.destroy();
    }));

  it("direct TLS: without ALPN closed unread as PostgreSQL 17 closes it, with another protocol refused at the handshake; closed when TLS is off", async () => {
    await withTestPooler(clientTls("require"), async (p) => {
      const handshake = (ALPNProtocols?: string[]) => {
        const secure = tls.connect({
          host: "127.0.0.1",
          port: p.port,
          rejectUnauthorized: false,
          ALPNProtocols,
        });
        return new Promise<tls.TLSSocket>((resolve, reject) => {
          secure.once("secureConnect", () => resolve(secure));
          secure.once("error", reject);
        });
      };
      // not even a CancelRequest is read from it: the query runs to its end
      const c = await connect(p.url(), { ssl: { rejectUnauthorized: false } });
      try {
        const { pid, secret } = cancelKeyOf(c);
        const sleeping = c.query("SELECT pg_sleep(1.5)");
        await new Promise((r) => setTimeout(r, 300));
        const noAlpn = await handshake();
        noAlpn.on("error", () => undefined);
        noAlpn.write(cancelRequest(pid, secret));
        const received: Buffer[] = [];
        noAlpn.on("data", (d: Buffer) => received.push(d));
        await new Promise((r) => noAlpn.once("close", r));
        expect(Buffer.concat(received)).toHaveLength(0);
        await expect(sleeping).resolves.toBeDefined();
      } finally {
        await c.end();
      }
      expect(p.logs).toContainEqual(
        expect.objectContaining({
          msg: "received direct SSL connection request without ALPN protocol negotiation extension",
        }),
      );
      const otherProtocol = await errorOf(handshake(["h2"]));
      expect(otherProtocol.message).toMatch(/no application protocol/i);
    });
    await withTestPooler({}, async (p) => {
      const refused = await errorOf(
        connect(p.url(), { sslnegotiation: "direct", ssl: { rejectUnauthorized: false } }),
      );
      console.log(`direct TLS to a pooler without TLS: ${refused.message}`);
      await waitFor(
        () => p.logs.some((l) => l.msg === "direct TLS refused: TLS is not enabled"),
        "the pooler to log why it closed",
      );
    });
  });

  it("a CancelRequest over TLS with a client certificate the CA did not sign is not acted on (PgBouncer's handshake fails)", () =>
    withTestPooler(clientTls("require"), async (p) => {
      const c = await connect(p.url(), { ssl: { rejectUnauthorized: false } });
      try {
        const { pid, secret } = cancelKeyOf(c);
        const sleeping = c.query("SELECT pg_sleep(1.5)");
        await new Promise((r) => setTimeout(r, 300));
        const forged = await tlsHandshake(p.port, {
          cert: fs.readFileSync(certs.otherClientCert),
          key: fs.readFileSync(certs.otherClientKey),
        });
        forged.write(cancelRequest(pid, secret));
        await new Promise((r) => forged.once("close", r));
        await expect(sleeping).resolves.toBeDefined();
      } finally {
        await c.end();
      }
    }));

  it("client_login_timeout during a TLS handshake closes without writing plaintext into it", () =>
    withTestPooler({ ...clientTls("require"), CLIENT_LOGIN_TIMEOUT: "1" }, async (p) => {
      const raw = net.connect({ host: "127.0.0.1", port: p.port });
      raw.on("error", () => undefined);
      const received: Buffer[] = [];
      raw.on("data", (d: Buffer) => received.push(d));
      await new Promise((r) => raw.once("connect", r));
      raw.write(sslRequest());
      await waitFor(() => received.length > 0, "the answer to the SSLRequest");
      raw.write(Buffer.from([0x16, 0x03])); // the start of a ClientHello, and then nothing
      await new Promise((r) => raw.once("close", r));
      expect(Buffer.concat(received).toString()).toBe("S");
    }));

  it("cancels a TLS client's query, by a CancelRequest over TLS and by a plaintext one (psql's)", () =>
    withTestPooler(clientTls("require"), async (p) => {
      const c = await connect(p.url(), { ssl: { rejectUnauthorized: false } });
      const keys = cancelKeyOf(c);
      const overTls = {
        mode: "require" as const,
        context: tls.createSecureContext(),
        verifyChain: false,
        verifyName: false,
      };
      try {
        for (const setup of [overTls, null]) {
          const started = Date.now();
          const running = errorOf(c.query("SELECT pg_sleep(30)"));
          await new Promise((r) => setTimeout(r, 300));
          const sock = net.connect({ host: "127.0.0.1", port: p.port });
          sock.on("error", () => undefined);
          await new Promise((r) => sock.once("connect", r));
          const channel = await connectTls(sock, setup, "127.0.0.1");
          channel.end(cancelRequest(keys.pid, keys.secret));
          const err = await running;
          console.log(`cancel ${setup ? "over TLS" : "in plaintext"}: ${Date.now() - started} ms`);
          expect(err.code).toBe("57014");
          expect(Date.now() - started).toBeLessThan(15_000);
        }
      } finally {
        await c.end();
      }
    }));

  it("SET turns TLS on online; without usable files it is refused and nothing changes", () =>
    withTestPooler({}, async (p) => {
      const admin = await connect(p.url("pgbouncer"));
      try {
        const refused = await errorOf(admin.query("SET client_tls_sslmode = 'require'"));
        expect(refused.message).toContain("client_tls_sslmode: require needs client_tls_key_file");
        await admin.query(`SET client_tls_key_file = '${certs.serverKey}'`);
        await admin.query(`SET client_tls_cert_file = '${certs.serverCert}'`);
        // still plain: the mode was not changed by the refused SET
        expect((await psql(withParams(p.url(), { sslmode: "disable" }), "SELECT 1")).stdout.trim()).toBe("1");
        await admin.query("SET client_tls_sslmode = 'require'");
        const plain = await errorOf(psql(withParams(p.url(), { sslmode: "disable" }), "SELECT 1"));
        expect(plain.message).toContain("SSL required");
        expect((await psql(withParams(p.url(), { sslmode: "require" }), "SELECT 1")).stdout.trim()).toBe("1");
      } finally {
        await admin.end();
      }
    }));

  it("RELOAD picks up new certificate files", async () => {
    const renewed = makeCerts();
    const live = { cert: path.join(renewed.dir, "live.crt"), key: path.join(renewed.dir, "live.key") };
    fs.copyFileSync(certs.serverCert, live.cert);
    fs.copyFileSync(certs.serverKey, live.key);
    const env = { ...clientTls("require"), CLIENT_TLS_CERT_FILE: live.cert, CLIENT_TLS_KEY_FILE: live.key };
    try {
      await withTestPooler(env, async (p) => {
        expect((await psql(verifyFull(p, certs.caCert, false), "SELECT 1")).stdout.trim()).toBe("1");
        fs.copyFileSync(renewed.serverCert, live.cert);
        fs.copyFileSync(renewed.serverKey, live.key);
        const admin = await connect(p.url("pgbouncer"), { ssl: { rejectUnauthorized: false } });
        await admin.query("RELOAD");
        await admin.end();
        expect((await psql(verifyFull(p, renewed.caCert, false), "SELECT 1")).stdout.trim()).toBe("1");
        const old = await errorOf(psql(verifyFull(p, certs.caCert, false), "SELECT 1"));
        expect(old.message).toMatch(/certificate verify failed/);
      });
    } finally {
      renewed.remove();
    }
  });
});

describe("server side TLS", () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    server = await startPrivatePostgres({
      settings: { ssl: "on", ssl_cert_file: certs.serverCert, ssl_key_file: certs.serverKey },
    });
  });
  afterAll(() => server?.stop());

  /** Whether the backend serving this pooler client speaks TLS to the pooler (pg_stat_ssl). */
  async function backendSsl(p: TestPooler): Promise<{ ssl: boolean; version: string | null }> {
    const c = await connect(p.url("postgres"));
    try {
      const { rows } = await c.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
      return rows[0];
    } finally {
      await c.end();
    }
  }

  it("require and the default (prefer): the pooler's backends use TLS; SHOW SERVERS shows it", async () => {
    for (const mode of ["require", undefined]) {
      const env = { DATABASE_URL: server.url(), ...(mode ? { SERVER_TLS_SSLMODE: mode } : {}) };
      await withTestPooler(env, async (p) => {
        expect(await backendSsl(p)).toEqual({ ssl: true, version: "TLSv1.3" });
        const admin = await connect(p.url("pgbouncer"));
        try {
          const shown = await tlsColumn(admin, "SERVERS");
          console.log(`server tls column (${mode ?? "prefer"}): ${shown.join(", ")}`);
          expect(shown).toEqual([expect.stringMatching(/^TLSv1\.3\/TLS_\w+\/ECDH=\w+$/)]);
        } finally {
          await admin.end();
        }
      });
    }
  });

  it("a server whose connection uses TLS gets its cancel over TLS too, under prefer as under require", async () => {
    const proxy = await relay({ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: server.port });
    const opened = openings(proxy);
    const { port } = proxy.address() as net.AddressInfo;
    try {
      for (const mode of ["prefer", "require"]) {
        opened.length = 0;
        const env = {
          DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
          SERVER_TLS_SSLMODE: mode,
        };
        await withTestPooler(env, async (p) => {
          const c = await connect(p.url("postgres"));
          try {
            expect((await cancelledSleep(c, p.port)).err.code).toBe("57014");
            expect(opened).toEqual(["SSLRequest", "SSLRequest"]);
          } finally {
            await c.end();
          }
        });
      }
    } finally {
      proxy.close();
    }
  });

  it("server_tls13_ciphers (PgBouncer 1.25): the pooler offers PostgreSQL only the suites named", async () => {
    const env = { DATABASE_URL: server.url(), SERVER_TLS13_CIPHERS: "TLS_CHACHA20_POLY1305_SHA256" };
    await withTestPooler(env, async (p) => {
      expect(await backendSsl(p)).toEqual({ ssl: true, version: "TLSv1.3" });
      const admin = await connect(p.url("pgbouncer"));
      try {
        expect(await tlsColumn(admin, "SERVERS")).toEqual([
          expect.stringMatching(/^TLSv1\.3\/TLS_CHACHA20_POLY1305_SHA256\//),
        ]);
      } finally {
        await admin.end();
      }
    });
  });

  it("a changed TLS setting (SET or RELOAD) replaces every server once released, as PgBouncer's RECONNECT; an unchanged one does not", () =>
    withTestPooler({ ADMIN_USERS: "postgres" }, async (p) => {
      const c = await connect(p.url());
      const admin = await connect(p.url("pgbouncer"));
      const closeNeeded = async (command: string): Promise<number[]> => {
        await c.query("BEGIN"); // holds its server, so that the command meets it busy
        await admin.query(command);
        const { rows } = await admin.query<{ close_needed: number }>("SHOW SERVERS");
        await c.query("COMMIT");
        return rows.map((r) => r.close_needed);
      };
      try {
        expect(await closeNeeded("SET server_tls_sslmode = 'disable'")).toEqual([1]);
        expect(await closeNeeded("SET server_tls_sslmode = 'disable'")).toEqual([0]);
        expect(await closeNeeded("SET client_tls_protocols = 'tlsv1.3'")).toEqual([1]);
        expect(await closeNeeded("RELOAD")).toEqual([1]); // both back to the environment's
        expect(await closeNeeded("RELOAD")).toEqual([0]);
        expect(
          p.logs.filter((l) => l.msg === "TLS settings changed: every server is replaced once released"),
        ).toHaveLength(3);
      } finally {
        await c.end();
        await admin.end();
      }
    }));

  it("verify-full against server_tls_ca_file works; a wrong CA is refused with a clear error", async () => {
    const env = (ca: string): Record<string, string> => ({
      DATABASE_URL: server.url(),
      SERVER_TLS_SSLMODE: "verify-full",
      SERVER_TLS_CA_FILE: ca,
    });
    await withTestPooler(env(certs.caCert), async (p) => {
      expect((await backendSsl(p)).ssl).toBe(true);
    });
    await withTestPooler(env(certs.otherCaCert), async (p) => {
      const err = await errorOf(connect(p.url("postgres")));
      console.log(`wrong server CA: ${err.message}`);
      expect(err.message).toBe(
        "server login failed: TLS handshake with the server failed: unable to verify the first certificate",
      );
      expect(err.code).toBe("08006");
    });
  });

  it("verify-full without server_tls_ca_file trusts the system's CAs (OpenSSL's store, as PgBouncer), not only those bundled with Node", async () => {
    const port = await freePort();
    // the test CA as the system's only one: OpenSSL's default file, as libusual's default CA file
    const pooler = spawnPooler([], {
      DATABASE_URL: server.url(),
      LISTEN_PORT: String(port),
      SERVER_TLS_SSLMODE: "verify-full",
      SSL_CERT_FILE: certs.caCert,
      SSL_CERT_DIR: certs.dir,
    });
    try {
      await waitFor(() => pooler.output().includes('"listening"'), "the pooler to listen", 15_000);
      const c = await connect(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres`);
      try {
        const { rows } = await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
        expect(rows).toEqual([{ ssl: true }]);
      } finally {
        await c.end();
      }
    } finally {
      pooler.child.kill("SIGKILL");
    }
  });

  it("auth_query follows server_tls_sslmode, to a server that accepts only hostssl", async () => {
    const role = "pooler_tls_lookup_user";
    const password = "lookup-pw";
    const admin = await connect(server.url(), { ssl: { rejectUnauthorized: false } });
    const hbaFile = (await admin.query<{ hba_file: string }>("SHOW hba_file")).rows[0]!.hba_file;
    const hba = fs.readFileSync(hbaFile, "utf8");
    const plainRefused = (): Promise<boolean> =>
      connect(server.url(), { ssl: false }).then(
        (c) => c.end().then(() => false),
        () => true,
      );
    const authFile = path.join(certs.dir, "userlist.txt");
    fs.writeFileSync(authFile, `${formatUserlistLine("postgres", "postgres")}\n`);
    const env = (mode: string, ca = certs.caCert): Record<string, string> => ({
      DATABASE_URL: server.url(),
      AUTH_TYPE: "scram-sha-256",
      AUTH_FILE: authFile, // without the role: only auth_query knows its secret
      AUTH_USER: "postgres",
      SERVER_TLS_SSLMODE: mode,
      SERVER_TLS_CA_FILE: ca,
    });
    try {
      await admin.query("SET password_encryption = 'scram-sha-256'");
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      fs.writeFileSync(hbaFile, "local all all md5\nhostssl all all all md5\n");
      await admin.query("SELECT pg_reload_conf()");
      await waitFor(plainRefused, "the server to refuse plaintext");

      for (const mode of ["require", "verify-full"]) {
        await withTestPooler(env(mode), async (p) => {
          const c = await connect(`postgresql://${role}:${password}@127.0.0.1:${p.port}/postgres`);
          try {
            const { rows } = await c.query(
              "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            );
            expect(rows).toEqual([{ current_user: role, ssl: true }]);
          } finally {
            await c.end();
          }
        });
      }

      const refusals: [Record<string, string>, RegExp][] = [
        // what a client waiting in any pool is told: the lookup waits in auth_user's
        [env("disable"), /^server login failed: no pg_hba\.conf entry for host .*, SSL off;/],
        [env("verify-full", certs.otherCaCert), /certificate/],
      ];
      for (const [settings, reason] of refusals) {
        await withTestPooler(settings, async (p) => {
          const err = await errorOf(connect(`postgresql://${role}:${password}@127.0.0.1:${p.port}/postgres`));
          expect(err.code).toBe("08006");
          expect(err.message).toBe("authentication lookup failed");
          const logged = String(p.logs.find((l) => l.msg === "auth_query failed")?.err);
          console.log(`auth_query, server_tls_sslmode=${settings.SERVER_TLS_SSLMODE}: ${logged}`);
          expect(logged).toMatch(reason);
        });
      }
    } finally {
      fs.writeFileSync(hbaFile, hba);
      await admin.query("SELECT pg_reload_conf()");
      await waitFor(async () => !(await plainRefused()), "the server to accept plaintext again");
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  it("require against a server without TLS: the waiting client is told the server refused SSL", () =>
    // the shared PostgreSQL runs without ssl
    withTestPooler({ SERVER_TLS_SSLMODE: "require" }, async (p) => {
      const err = await errorOf(connect(p.url()));
      expect(err.message).toBe("server login failed: server refused SSL (server_tls_sslmode=require)");
    }));

  it("a cancel request whose TLS cannot be set up is done at once, not at cancel_wait_timeout (its server held from every client meanwhile)", async () => {
    // the test PostgreSQL has no TLS: it answers 'N', and waits for a startup packet
    const to = new URL(inject("pgAppUrl"));
    const setup = {
      mode: "require" as const,
      context: tls.createSecureContext(),
      verifyChain: false,
      verifyName: false,
    };
    const target = {
      host: to.hostname,
      port: Number(to.port),
      tls: setup,
      lookup: dns.lookup,
      keepalive: { enable: false, idle: 0, interval: 0, count: 0 },
    };
    const started = Date.now();
    const failures: string[] = [];
    await new Promise<void>((done) =>
      sendCancelRequest(target, { pid: 1, secret: 2 }, 5000, {
        failed: (err) => failures.push(err.message),
        done,
      }),
    );
    expect(failures).toEqual(["server refused SSL (server_tls_sslmode=require)"]);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
