import net from "node:net";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { makeCerts } from "../../test/support/certs.ts";
import { InvalidValue } from "./errors.ts";
import { loadConfig } from "./index.ts";
import { buildTls, parseEcdhCurve, parseTlsCiphers, parseTlsProtocols } from "./tls.ts";

describe("parseTlsProtocols", () => {
  it("maps PgBouncer's versions and shortcuts onto Node's minimum and maximum", () => {
    expect(parseTlsProtocols("secure")).toEqual({ minVersion: "TLSv1.2", maxVersion: "TLSv1.3" });
    expect(parseTlsProtocols("all")).toEqual({ minVersion: "TLSv1", maxVersion: "TLSv1.3" });
    expect(parseTlsProtocols("TLSv1.3")).toEqual({ minVersion: "TLSv1.3", maxVersion: "TLSv1.3" });
    expect(parseTlsProtocols("tlsv1.1, tlsv1.2")).toEqual({ minVersion: "TLSv1.1", maxVersion: "TLSv1.2" });
  });

  it("takes libtls' negations and its tlsv1 (every version), as PgBouncer 1.18 does (measured)", () => {
    expect(parseTlsProtocols("all,!tlsv1.0,!tlsv1.1")).toEqual({
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.3",
    });
    // a list that starts with a negation starts from every version
    expect(parseTlsProtocols("!tlsv1.3")).toEqual({ minVersion: "TLSv1", maxVersion: "TLSv1.2" });
    expect(parseTlsProtocols("secure:!tlsv1.2")).toEqual({ minVersion: "TLSv1.3", maxVersion: "TLSv1.3" });
    expect(parseTlsProtocols("tlsv1")).toEqual({ minVersion: "TLSv1", maxVersion: "TLSv1.3" });
    expect(() => parseTlsProtocols("!all")).toThrow(/at least one TLS version/);
    // PgBouncer 1.18 leaves libtls' default (secure) for an empty value
    expect(parseTlsProtocols("")).toEqual({ minVersion: "TLSv1.2", maxVersion: "TLSv1.3" });
    expect(() => parseTlsProtocols("all,!tlsv1.1")).toThrow(/without a gap/);
  });

  it("refuses what Node cannot honour or PgBouncer does not know", () => {
    expect(() => parseTlsProtocols("tlsv1.0,tlsv1.3")).toThrow(InvalidValue);
    expect(() => parseTlsProtocols("sslv3")).toThrow(/a list of tlsv1\.0, tlsv1\.1, tlsv1\.2, tlsv1\.3/);
    expect(() => parseTlsProtocols(" , ")).toThrow(/at least one TLS version/);
  });
});

describe("parseTlsCiphers", () => {
  it("spells out PgBouncer's keywords as libusual does and passes OpenSSL lists through", () => {
    expect(parseTlsCiphers("default")).toBe("HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL");
    expect(parseTlsCiphers("ALL")).toBe("ALL:!aNULL:!eNULL");
    expect(parseTlsCiphers("ECDHE-RSA-AES128-GCM-SHA256")).toBe("ECDHE-RSA-AES128-GCM-SHA256");
    expect(() => parseTlsCiphers("NO-SUCH-CIPHER")).toThrow(/no cipher match/);
  });
});

describe("parseEcdhCurve", () => {
  it("takes auto, a curve or a colon list this OpenSSL knows; none leaves the groups alone, as PgBouncer 1.18 does", () => {
    const taken = ["auto", "NONE", "", "secp384r1", " X25519:P-256 "].map((raw) => parseEcdhCurve(raw));
    expect(taken).toEqual(["auto", "auto", "auto", "secp384r1", "X25519:P-256"]);
    expect(() => parseEcdhCurve("secp385r1")).toThrow(
      /^expected none, auto, or a curve this OpenSSL knows, such as prime256v1/,
    );
  });
});

describe("TLS files at load", () => {
  const base = { DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db" };

  it("refuses TLS without a key and certificate, or with files it cannot read or use, naming the key", () => {
    expect(() => loadConfig({ env: { ...base, CLIENT_TLS_SSLMODE: "require" } })).toThrow(
      "client_tls_sslmode: require needs client_tls_key_file and client_tls_cert_file (CLIENT_TLS_KEY_FILE, CLIENT_TLS_CERT_FILE)",
    );
    const certs = makeCerts();
    try {
      const env = {
        ...base,
        CLIENT_TLS_SSLMODE: "prefer",
        CLIENT_TLS_KEY_FILE: certs.serverKey,
        CLIENT_TLS_CERT_FILE: certs.serverCert,
      };
      expect(() => loadConfig({ env: { ...env, CLIENT_TLS_KEY_FILE: "/nonexistent/server.key" } })).toThrow(
        /^client_tls_key_file: cannot read "\/nonexistent\/server\.key": ENOENT/,
      );
      // the client's key with the server's certificate
      expect(() => loadConfig({ env: { ...env, CLIENT_TLS_KEY_FILE: certs.clientKey } })).toThrow(
        /^client_tls_key_file, client_tls_cert_file, client_tls_ca_file: OpenSSL cannot use these files: .*key values mismatch/,
      );
      expect(() => loadConfig({ env: { ...base, SERVER_TLS_KEY_FILE: certs.clientKey } })).toThrow(
        /^server_tls_key_file, server_tls_cert_file: a client certificate for the server needs both/,
      );
      const { config } = loadConfig({
        env: {
          ...env,
          CLIENT_TLS_SSLMODE: "verify-ca",
          CLIENT_TLS_CA_FILE: certs.caCert,
          SERVER_TLS_SSLMODE: "verify-full",
        },
      });
      const setup = buildTls(config);
      expect(setup.client).toMatchObject({ mode: "verify-ca", requestCert: true });
      // 1024-bit DH only where the cipher list lowers OpenSSL's security level
      expect(() => loadConfig({ env: { ...env, CLIENT_TLS_DHEPARAMS: "legacy" } })).toThrow(
        "client_tls_dheparams: legacy (1024-bit DH) is below this OpenSSL's security level; use auto, or lower the level with :@SECLEVEL=1 in client_tls_ciphers",
      );
      const lowered = { ...env, CLIENT_TLS_DHEPARAMS: "legacy", CLIENT_TLS_CIPHERS: "HIGH:@SECLEVEL=1" };
      expect(buildTls(loadConfig({ env: lowered }).config).client).not.toBeNull();
      expect(setup.server).toMatchObject({ mode: "verify-full", verifyChain: true, verifyName: true });
      expect(buildTls(loadConfig({ env: { ...base, SERVER_TLS_SSLMODE: "disable" } }).config)).toEqual({
        client: null,
        server: null,
      });
    } finally {
      certs.remove();
    }
  });
});

describe("the client acceptor", () => {
  it("leaves a handshake's time to client_login_timeout: no 120 s bound of Node's of its own", async () => {
    const certs = makeCerts();
    const { config } = loadConfig({
      env: {
        DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db",
        CLIENT_TLS_SSLMODE: "require",
        CLIENT_TLS_KEY_FILE: certs.serverKey,
        CLIENT_TLS_CERT_FILE: certs.serverCert,
        CLIENT_LOGIN_TIMEOUT: "0",
      },
    });
    const acceptor = buildTls(config).client!.acceptor;
    // the handshake's keys are logged midway, on the socket whose timer would cut it
    const midway: (number | undefined)[] = [];
    acceptor.on("keylog", (_line: Buffer, s: tls.TLSSocket) => midway.push(s.timeout));
    const server = net.createServer((socket) => acceptor.emit("connection", socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
      await new Promise((resolve) => client.once("secureConnect", resolve));
      client.destroy();
      expect(new Set(midway)).toEqual(new Set([undefined]));
    } finally {
      server.close();
      certs.remove();
    }
  });
});
