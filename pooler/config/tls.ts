// PgBouncer's client_tls_* / server_tls_* settings turned into what Node's tls module takes: the
// protocol and cipher keywords of PgBouncer (libusual), then one SecureContext per side built from
// the key, certificate and CA files. Built at load and on every reload, so new files are picked up.

import crypto from "node:crypto";
import fs from "node:fs";
import tls from "node:tls";
import { ConfigError, InvalidValue } from "./errors.ts";
import type { DheParams, PoolerConfig, SslMode } from "./types.ts";

export const SSL_MODES: readonly SslMode[] = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
];

/** From `require` on, a peer without TLS is refused. */
export function tlsRequired(mode: SslMode): boolean {
  return SSL_MODES.indexOf(mode) >= SSL_MODES.indexOf("require");
}

function verifiesPeer(mode: SslMode): boolean {
  return mode === "verify-ca" || mode === "verify-full";
}

const VERSIONS = ["tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"] as const;
const NODE_VERSION: readonly tls.SecureVersion[] = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
const PROTOCOL_SHORTCUTS: Record<string, readonly number[]> = {
  all: [0, 1, 2, 3],
  tlsv1: [0, 1, 2, 3],
  legacy: [0, 1, 2, 3],
  secure: [2, 3],
  default: [2, 3],
};

export interface TlsVersions {
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
}

/**
 * `*_tls_protocols`: a list of tlsv1.0 … tlsv1.3 and the shortcuts all, legacy, secure (PgBouncer's
 * default), tlsv1 (every version); `!` takes one out, from every version if nothing came before, as
 * libtls reads it; empty: secure. Node takes a minimum and a maximum, so a list that skips a version
 * cannot be honoured.
 */
export function parseTlsProtocols(raw: string): TlsVersions {
  // PgBouncer sets nothing for an empty value: libtls' default stays
  if (raw.trim() === "") return parseTlsProtocols("secure");
  const wanted = new Set<number>();
  for (const entry of raw.split(/[,:]/).map((s) => s.trim().toLowerCase())) {
    if (entry === "") continue;
    const negated = entry.startsWith("!");
    const item = negated ? entry.slice(1) : entry;
    const index = VERSIONS.indexOf(item as (typeof VERSIONS)[number]);
    const versions = PROTOCOL_SHORTCUTS[item] ?? (index >= 0 ? [index] : undefined);
    if (versions === undefined) {
      throw new InvalidValue(
        "a list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, or all, legacy, secure, each may be negated with !",
      );
    }
    if (!negated) for (const v of versions) wanted.add(v);
    else {
      if (wanted.size === 0) for (const v of PROTOCOL_SHORTCUTS.all!) wanted.add(v);
      for (const v of versions) wanted.delete(v);
    }
  }
  const sorted = [...wanted].sort((a, b) => a - b);
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  if (min === undefined || max === undefined) throw new InvalidValue("at least one TLS version");
  if (max - min + 1 !== sorted.length) {
    throw new InvalidValue("TLS versions without a gap (Node cannot skip a version in between)");
  }
  return { minVersion: NODE_VERSION[min]!, maxVersion: NODE_VERSION[max]! };
}

/** PgBouncer's cipher keywords, as libusual spells them out for OpenSSL. */
const CIPHER_SHORTCUTS: Record<string, string> = {
  default: "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL",
  secure: "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL",
  compat: "HIGH:+3DES:!aNULL",
  legacy: "HIGH:+3DES:!aNULL",
  normal:
    "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+SHA384:+SHA256:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL",
  fast: "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+AES256:+SHA256:+SHA384:+SSLv3:+EDH:+RSA:-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL",
  all: "ALL:!aNULL:!eNULL",
  insecure: "ALL:!aNULL:!eNULL",
};

/** `*_tls_ciphers`: a keyword or an OpenSSL cipher list, checked against this OpenSSL. */
export function parseTlsCiphers(raw: string): string {
  const ciphers = CIPHER_SHORTCUTS[raw.trim().toLowerCase()] ?? raw.trim();
  try {
    tls.createSecureContext({ ciphers });
  } catch (err) {
    throw new InvalidValue(
      `a cipher keyword (default, secure, compat, legacy, normal, fast, all) or an OpenSSL cipher list this OpenSSL knows (${(err as Error).message})`,
    );
  }
  return ciphers;
}

const CCM_8 = "TLS_AES_128_CCM_8_SHA256";

/** The TLS 1.3 suites PgBouncer 1.25 takes in `*_tls13_ciphers`, OpenSSL's names for them. */
const TLS13_SUITES = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_AES_128_GCM_SHA256",
  CCM_8,
  "TLS_AES_128_CCM_SHA256",
];

/** `*_tls13_ciphers` (PgBouncer 1.25): a colon list of TLS 1.3 suites; empty: OpenSSL's default ones. */
export function parseTls13Ciphers(raw: string): string {
  const suites = raw
    .split(":")
    .map((suite) => suite.trim())
    .filter((suite) => suite !== "");
  const unknown = suites.find((suite) => !TLS13_SUITES.includes(suite));
  if (unknown !== undefined)
    throw new InvalidValue(`TLS 1.3 suites separated by colons, of ${TLS13_SUITES.join(", ")}`);
  return suites.join(":");
}

/**
 * Node's `ciphers` carries both lists: names starting TLS_ set the TLS 1.3 suites (OpenSSL's
 * default ones when there are none), the rest TLS 1.2 and below. Set, `tls13` replaces any TLS_
 * names in the other list, which otherwise go on choosing TLS 1.3 suites as they did before.
 */
function nodeCiphers(prefix: string, ciphers: string, tls13: string): string {
  const older = parseTlsCiphers(ciphers);
  const suites = parseTls13Ciphers(tls13);
  if (suites === "") return older;
  // OpenSSL 3 offers CCM_8 only at security level 0: named alone, it would leave TLS 1.3 clients no
  // suite, and they do not fall back to 1.2
  if (suites === CCM_8 && !/@SECLEVEL=0\b/i.test(older)) {
    const key = prefix.replace("_tls", "_tls13");
    throw new ConfigError(
      `${key}_ciphers: ${CCM_8} alone leaves TLS 1.3 clients no suite, as OpenSSL offers it only at :@SECLEVEL=0 (in ${prefix}_ciphers); add another suite`,
    );
  }
  const withoutTls13 = older.split(":").filter((c) => !c.startsWith("TLS_"));
  return [...withoutTls13, suites].join(":");
}

/**
 * `client_tls_ecdhcurve` as Node's ecdhCurve. PgBouncer 1.18 on OpenSSL 3 leaves the groups alone
 * for `none` (measured: ECDHE is still negotiated), so none and an empty value are auto here too.
 * Besides PgBouncer's single curve names (prime256v1, secp384r1), OpenSSL's group names and
 * colon lists are taken (X25519, P-384), as Node hands them on.
 */
export function parseEcdhCurve(raw: string): string {
  const curve = raw.trim();
  if (["", "none", "auto"].includes(curve.toLowerCase())) return "auto";
  try {
    tls.createSecureContext({ ecdhCurve: curve });
  } catch {
    throw new InvalidValue(
      "none, auto, or a curve this OpenSSL knows, such as prime256v1, secp384r1 or X25519 (or a colon list)",
    );
  }
  return curve;
}

export const DHE_PARAMS: readonly DheParams[] = ["none", "auto", "legacy"];

/** A PKCS#3 DHParameter PEM, the form Node's dhparam takes. */
function dhParametersPem(group: crypto.DiffieHellmanGroup): string {
  const der = derSequence([derInteger(group.getPrime()), derInteger(group.getGenerator())]);
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN DH PARAMETERS-----\n${lines.join("\n")}\n-----END DH PARAMETERS-----\n`;
}

function derInteger(unsigned: Buffer): Buffer {
  // a set top bit would make it negative
  const body = (unsigned[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), unsigned]) : unsigned;
  return derElement(0x02, body);
}

function derSequence(elements: Buffer[]): Buffer {
  return derElement(0x30, Buffer.concat(elements));
}

function derElement(tag: number, body: Buffer): Buffer {
  const length: number[] = [];
  for (let n = body.length; n > 0; n >>= 8) length.unshift(n & 0xff);
  const header = body.length < 0x80 ? [body.length] : [0x80 | length.length, ...length];
  return Buffer.concat([Buffer.from([tag, ...header]), body]);
}

/** `legacy`: 1024-bit DH, RFC 2409's group 2 (Node's modp2). */
const LEGACY_DH_PARAMS = dhParametersPem(crypto.getDiffieHellman("modp2"));

/** Node's dhparam for client_tls_dheparams: without one, OpenSSL offers no DHE suite. */
function dhparam(mode: DheParams): string | undefined {
  if (mode === "none") return undefined;
  return mode === "auto" ? "auto" : LEGACY_DH_PARAMS;
}

/** PostgreSQL's ALPN protocol name (PostgreSQL 17), which a direct TLS client must offer. */
export const ALPN_POSTGRESQL = "postgresql";

/** The pooler as a TLS server to its clients (null: client_tls_sslmode = disable). */
export interface ClientTls {
  mode: SslMode;
  /**
   * A tls.Server that never listens: a client socket that asked for TLS is handed to it, because
   * only tls.Server checks a client certificate against the CA (a bare server-side tls.TLSSocket
   * merely insists that one is sent).
   */
  acceptor: tls.Server;
  /**
   * A client certificate is asked for: under every mode with client_tls_ca_file, as PgBouncer asks
   * (optionally below verify-ca), so that `cert` lines of auth_hba_file serve under require too.
   */
  requestCert: boolean;
  /** verify-ca / verify-full: the client must present a certificate the CA signed. */
  requireCert: boolean;
}

/** The pooler as a TLS client of PostgreSQL (null: server_tls_sslmode = disable). */
export interface ServerTls {
  mode: SslMode;
  context: tls.SecureContext;
  /** verify-ca / verify-full: the server's certificate must chain to server_tls_ca_file (or the system CAs). */
  verifyChain: boolean;
  /** verify-full: and name the host the pooler connects to. */
  verifyName: boolean;
}

export interface TlsSetup {
  client: ClientTls | null;
  server: ServerTls | null;
}

/** Reads the files and builds both sides' contexts; throws a ConfigError naming the key at fault. */
export function buildTls(config: PoolerConfig): TlsSetup {
  return { client: buildClientTls(config), server: buildServerTls(config) };
}

function buildClientTls(c: PoolerConfig): ClientTls | null {
  if (c.clientTlsSslmode === "disable") return null;
  if (c.clientTlsKeyFile === undefined || c.clientTlsCertFile === undefined) {
    throw new ConfigError(
      `client_tls_sslmode: ${c.clientTlsSslmode} needs client_tls_key_file and client_tls_cert_file (CLIENT_TLS_KEY_FILE, CLIENT_TLS_CERT_FILE)`,
    );
  }
  const requireCert = verifiesPeer(c.clientTlsSslmode);
  const requestCert = c.clientTlsCaFile !== undefined;
  // without it Node would take its bundled public CAs (and NODE_EXTRA_CA_CERTS) as the judges
  if (requireCert && c.clientTlsCaFile === undefined) {
    throw new ConfigError(
      `client_tls_sslmode: ${c.clientTlsSslmode} needs client_tls_ca_file (CLIENT_TLS_CA_FILE), the CA that signs client certificates`,
    );
  }
  const options = contextOptions("client_tls", {
    key: c.clientTlsKeyFile,
    cert: c.clientTlsCertFile,
    ca: c.clientTlsCaFile,
    protocols: c.clientTlsProtocols,
    ciphers: c.clientTlsCiphers,
    tls13Ciphers: c.clientTls13Ciphers,
  });
  // acceptTls refuses an unverified certificate itself, so that it can say why. A verdict holds
  // for one handshake only: no renegotiation (a second certificate after the first was checked)
  // and no session resumption (a resumed TLS 1.3 session counts as verified without a certificate):
  // no stateless tickets, and the stateful ones OpenSSL still sends find no server cache.
  const acceptor = usable("client_tls", () =>
    legacyDhAllowed(c.clientTlsDheparams, () =>
      tls.createServer({
        ...options,
        ecdhCurve: parseEcdhCurve(c.clientTlsEcdhcurve),
        dhparam: dhparam(c.clientTlsDheparams),
        requestCert,
        rejectUnauthorized: false,
        // a client that offers ALPN must offer PostgreSQL's (a direct TLS client must offer it at all)
        ALPNProtocols: [ALPN_POSTGRESQL],
        secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION | crypto.constants.SSL_OP_NO_TICKET,
        // client_login_timeout bounds the handshake (the janitor), as PgBouncer's; Node's own bound
        // (120 s, also for 0) would cut one sooner when it is above 120 or 0. Below 1 Node sets none.
        handshakeTimeout: -1,
      }),
    ),
  );
  return { mode: c.clientTlsSslmode, requestCert, requireCert, acceptor };
}

function buildServerTls(c: PoolerConfig): ServerTls | null {
  if (c.serverTlsSslmode === "disable") return null;
  if ((c.serverTlsKeyFile === undefined) !== (c.serverTlsCertFile === undefined)) {
    throw new ConfigError(
      "server_tls_key_file, server_tls_cert_file: a client certificate for the server needs both, or neither",
    );
  }
  const verifyChain = verifiesPeer(c.serverTlsSslmode);
  const options = contextOptions("server_tls", {
    key: c.serverTlsKeyFile,
    cert: c.serverTlsCertFile,
    ca: c.serverTlsCaFile,
    protocols: c.serverTlsProtocols,
    ciphers: c.serverTlsCiphers,
    tls13Ciphers: c.serverTls13Ciphers,
  });
  // Node's own default is the CA list bundled with it, where PgBouncer (OpenSSL's default file)
  // trusts the system's: a private CA installed there would otherwise be refused
  if (verifyChain && options.ca === undefined) options.ca = tls.getCACertificates("system");
  return {
    mode: c.serverTlsSslmode,
    verifyChain,
    verifyName: c.serverTlsSslmode === "verify-full",
    context: usable("server_tls", () => tls.createSecureContext(options)),
  };
}

interface ContextFiles {
  key: string | undefined;
  cert: string | undefined;
  ca: string | undefined;
  protocols: string;
  ciphers: string;
  tls13Ciphers: string;
}

function contextOptions(prefix: string, f: ContextFiles): tls.SecureContextOptions {
  // protocols and ciphers were checked when set; parsed again here to hand Node its own form
  return {
    ...parseTlsProtocols(f.protocols),
    ciphers: nodeCiphers(prefix, f.ciphers, f.tls13Ciphers),
    key: readFile(`${prefix}_key_file`, f.key),
    cert: readFile(`${prefix}_cert_file`, f.cert),
    ca: readFile(`${prefix}_ca_file`, f.ca),
  };
}

/**
 * OpenSSL refuses 1024-bit DH parameters below its security level (2 in Node 24's OpenSSL). PgBouncer
 * 1.18 on OpenSSL 3 starts and then fails every DHE handshake (`dh key too small`); refused at load
 * here instead, where the key can be named and the way out given.
 */
function legacyDhAllowed<T>(mode: DheParams, build: () => T): T {
  try {
    return build();
  } catch (err) {
    // Node's message for a dhparam OpenSSL would not take; auto and none never get it
    if (mode !== "legacy" || (err as Error).message !== "Error setting temp DH parameter") throw err;
    throw new ConfigError(
      "client_tls_dheparams: legacy (1024-bit DH) is below this OpenSSL's security level; use auto, or lower the level with :@SECLEVEL=1 in client_tls_ciphers",
    );
  }
}

/** Builds a context (or a server holding one); OpenSSL's reason says which file it cannot use. */
function usable<T>(prefix: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `${prefix}_key_file, ${prefix}_cert_file, ${prefix}_ca_file: OpenSSL cannot use these files: ${(err as Error).message}`,
    );
  }
}

function readFile(key: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
}
