// Authenticating a client against the pooler's user list (auth_type trust, any, plain, md5,
// scram-sha-256), and deriving how the pooler will in turn log in to the server for that user.
import { isUtf8 } from "node:buffer";
import crypto from "node:crypto";
import { matchHba, type HbaConnection } from "./config/hba.ts";
import type { AuthType, PoolerConfig, UserSecret } from "./config/types.ts";
import { Auth, BodyReader, authRequest, authenticationSASL } from "./protocol/messages.ts";
import { md5Secret, md5Verify } from "./protocol/auth/md5.ts";
import {
  SASL_MECHANISM,
  ScramServerSession,
  parseScramSecret,
  scramSecretFromPassword,
  type ScramSecret,
} from "./protocol/auth/scram.ts";
import { SqlState } from "./protocol/sqlstate.ts";
import type { ServerCredentials } from "./server.ts";

export type AuthStep =
  /** Send this challenge and wait for the client's next password message. */
  | { kind: "challenge"; message: Buffer }
  /** Authenticated; `final` (SCRAM's server signature) goes out before AuthenticationOk. */
  | { kind: "ok"; credentials: ServerCredentials; final?: Buffer }
  | { kind: "fail"; code: string; message: string };

type Method = "trust" | "plain" | "md5" | "scram";

/** PostgreSQL's own words for a failed login, so clients and tools recognise it. */
function failed(user: string): AuthStep {
  return {
    kind: "fail",
    code: SqlState.InvalidPassword,
    message: `password authentication failed for user "${user}"`,
  };
}

/** What ClientAuth runs once auth_type hba has been decided for a connection. */
export type PasswordAuthType = Exclude<AuthType, "hba">;

export interface LoginFacts extends HbaConnection {
  /** The CommonName of a client certificate the TLS handshake verified. */
  certUser: string | undefined;
}

export type AuthDecision =
  | { kind: "run"; authType: PasswordAuthType }
  /** `message` goes to the client (PgBouncer's words), `why` to the log. */
  | { kind: "refuse"; message: string; why: string };

/** auth_type hba and cert resolved for one connection, in PgBouncer's words when it is refused. */
export function decideAuth(config: PoolerConfig, c: LoginFacts): AuthDecision {
  if (config.authType === "cert") return certAuth(c);
  if (config.authType !== "hba") return { kind: "run", authType: config.authType };
  const rule = matchHba(config.hbaRules, c);
  if (rule === undefined)
    return { kind: "refuse", message: "login rejected", why: "no auth_hba_file line matches" };
  switch (rule.method) {
    case "reject":
      return { kind: "refuse", message: "login rejected", why: `${rule.where} rejects it` };
    case "peer":
      // Node has no way to read a Unix socket's SO_PEERCRED, so such a line can only refuse.
      return {
        kind: "refuse",
        message: "login rejected",
        why: `${rule.where}: peer authentication is not supported`,
      };
    case "cert":
      return certAuth(c);
    case "password":
      return { kind: "run", authType: "plain" };
    default:
      return { kind: "run", authType: rule.method };
  }
}

/** PgBouncer's words to the client whatever failed; what did goes to the log. */
const CERT_FAILED = "certificate authentication failed";

function certAuth(c: LoginFacts): AuthDecision {
  if (!c.tls) return { kind: "refuse", message: CERT_FAILED, why: "TLS connection required" };
  if (c.certUser === undefined) {
    return { kind: "refuse", message: CERT_FAILED, why: "TLS client certificate required" };
  }
  if (c.certUser !== c.user) {
    return {
      kind: "refuse",
      message: CERT_FAILED,
      why: `TLS certificate name mismatch: CN ${JSON.stringify(c.certUser)}`,
    };
  }
  return { kind: "run", authType: "cert" };
}

export class ClientAuth {
  private readonly method: Method;
  private salt: Buffer | null = null;
  private scram: ScramServerSession | null = null;

  /**
   * `secret` is the user's entry from the auth file or auth_query; undefined when unknown. An
   * unknown user still gets a challenge (and then fails) so that probing does not reveal names.
   */
  /** `scramIterations`: of the secrets made up for a plain-text password or an unknown user. */
  constructor(
    private readonly authType: PasswordAuthType,
    private readonly user: string,
    private readonly secret: UserSecret | undefined,
    private readonly scramIterations: number,
  ) {
    this.method = ClientAuth.methodFor(authType, secret);
    this.checked = isEmptyPassword(user, secret) ? undefined : secret;
  }

  /**
   * What a password is checked against: the secret, unless it is that of an empty password, which
   * never logs in (PostgreSQL and PgBouncer refuse one; the edoburu image writes `"user" ""` lines).
   */
  private readonly checked: UserSecret | undefined;

  private static methodFor(authType: PasswordAuthType, secret: UserSecret | undefined): Method {
    switch (authType) {
      case "trust":
      case "any":
      case "cert":
        return "trust";
      case "plain":
        return "plain";
      case "md5":
        // As PgBouncer: an md5 pooler with a SCRAM secret for the user switches to SCRAM.
        return secret?.kind === "scram" ? "scram" : "md5";
      case "scram-sha-256":
        return "scram";
    }
  }

  start(): AuthStep {
    switch (this.method) {
      case "trust":
        // As PgBouncer: trust and a verified certificate still want the user in auth_file or found
        // by auth_query (auth_type any does not), else any role the server trusts the pooler for
        // would be open to everyone.
        if (this.secret === undefined && this.authType !== "any") {
          const message = this.authType === "cert" ? CERT_FAILED : '"trust" authentication failed';
          return { kind: "fail", code: SqlState.InvalidAuthorization, message };
        }
        return { kind: "ok", credentials: this.credentials() };
      case "plain":
        return { kind: "challenge", message: authRequest(Auth.CleartextPassword) };
      case "md5":
        this.salt = md5Salt();
        return { kind: "challenge", message: authRequest(Auth.MD5Password, this.salt) };
      case "scram":
        return { kind: "challenge", message: authenticationSASL([SASL_MECHANISM]) };
    }
  }

  /** True while a password message is being checked: the next one waits for its verdict. */
  busy = false;

  /**
   * A PasswordMessage / SASLInitialResponse / SASLResponse ('p') from the client. Asynchronous:
   * checking it against a SCRAM secret runs PBKDF2, off the event loop.
   */
  async onPassword(msg: Buffer): Promise<AuthStep> {
    const r = new BodyReader(msg);
    this.busy = true;
    try {
      switch (this.method) {
        case "trust":
          return { kind: "fail", code: SqlState.ProtocolViolation, message: "unexpected password message" };
        case "plain":
          return await this.checkPlain(r.cstringBytes());
        case "md5":
          return this.checkMd5(r.cstring());
        case "scram":
          return await this.scramStep(r);
      }
    } finally {
      this.busy = false;
    }
  }

  private async checkPlain(bytes: Buffer): Promise<AuthStep> {
    const s = this.checked;
    // Decoded, each bad sequence of bytes that are not UTF-8 would read as U+FFFD, and passwords
    // PostgreSQL and PgBouncer tell apart would compare equal: such a password matches no secret.
    if (s === undefined || bytes.length === 0 || !isUtf8(bytes)) return failed(this.user);
    const given = bytes.toString("utf8");
    const ok =
      s.kind === "plain"
        ? safeEqual(given, s.secret)
        : s.kind === "md5"
          ? safeEqual(md5Secret(this.user, given), s.secret)
          : await scramMatches(s.secret, given);
    return ok ? { kind: "ok", credentials: this.credentials(given) } : failed(this.user);
  }

  private checkMd5(response: string): AuthStep {
    const s = this.checked;
    if (
      s === undefined ||
      s.kind === "scram" ||
      !md5Verify(this.user, { kind: s.kind, secret: s.secret }, this.salt!, response)
    ) {
      return failed(this.user);
    }
    return { kind: "ok", credentials: this.credentials() };
  }

  private async scramStep(r: BodyReader): Promise<AuthStep> {
    try {
      if (this.scram === null) {
        const mechanism = r.cstring();
        if (mechanism !== SASL_MECHANISM) {
          return {
            kind: "fail",
            code: SqlState.ProtocolViolation,
            message: `client selected an invalid SASL authentication mechanism`,
          };
        }
        const len = r.int32(); // -1: no initial data
        const data = len < 0 ? "" : r.bytes(len).toString("utf8");
        // An unknown user or an md5 secret: run the exchange against a mock secret, then fail.
        this.scram = new ScramServerSession(await this.scramSecret());
        const serverFirst = this.scram.handleClientFirst(data);
        return { kind: "challenge", message: authRequest(Auth.SASLContinue, Buffer.from(serverFirst)) };
      }
      const result = this.scram.handleClientFinal(r.rest().toString("utf8"));
      if (!result.ok || this.checked === undefined || this.checked.kind === "md5") return failed(this.user);
      return {
        kind: "ok",
        final: authRequest(Auth.SASLFinal, Buffer.from(result.serverFinal)),
        credentials: this.credentials(undefined, {
          clientKey: result.clientKey,
          serverKey: (await this.scramSecret()).serverKey,
        }),
      };
    } catch (err) {
      return { kind: "fail", code: SqlState.ProtocolViolation, message: (err as Error).message };
    }
  }

  private scramSecretCache: ScramSecret | null = null;

  private async scramSecret(): Promise<ScramSecret> {
    if (this.scramSecretCache) return this.scramSecretCache;
    const s = this.checked;
    const parsed =
      s?.kind === "scram"
        ? parseScramSecret(s.secret)
        : s?.kind === "plain"
          ? await scramSecretFromPassword(s.secret, this.scramIterations, mockSalt(this.user), true)
          : mockScramSecret(this.user, this.scramIterations);
    if (parsed === null) throw new Error(`invalid SCRAM secret for user "${this.user}"`);
    this.scramSecretCache = parsed;
    return parsed;
  }

  /** How the pooler logs in to the server for this user, from what the auth step learnt. */
  credentials(plainPassword?: string, scramKeys?: ServerCredentials["scramKeys"]): ServerCredentials {
    const s = this.secret;
    // A plain password works for any server method; SCRAM pass-through only when the userlist holds
    // the server's own secret (same salt), so it comes second.
    if (s?.kind === "plain") return { user: this.user, password: s.secret };
    if (plainPassword !== undefined) return { user: this.user, password: plainPassword };
    if (scramKeys) return { user: this.user, scramKeys };
    if (s?.kind === "md5") return { user: this.user, password: s.secret };
    return { user: this.user };
  }
}

/**
 * What an unknown user (or one whose secret cannot do SCRAM) is challenged with, as PostgreSQL's
 * scram_mock_salt: a salt derived from the name and a per-process secret, so repeated attempts see
 * the same plausible salt as for a real user, and scram_iterations (4096, PostgreSQL's count). No PBKDF2 is run
 * (the keys are random: the exchange fails at the final step), so it costs what a stored secret does.
 */
const MOCK_NONCE = crypto.randomBytes(32);

/**
 * Four random bytes per md5 login. randomInt draws from Node's cached batch of CSPRNG output, where
 * randomBytes(4) is a call into OpenSSL each time, a measurable share of a login (pgbench -C).
 */
function md5Salt(): Buffer {
  const salt = Buffer.allocUnsafe(4);
  salt.writeUInt32BE(crypto.randomInt(0x1_0000_0000));
  return salt;
}
function mockSalt(user: string): Buffer {
  return crypto.createHmac("sha256", MOCK_NONCE).update(user, "utf8").digest().subarray(0, 16);
}

function mockScramSecret(user: string, iterations: number): ScramSecret {
  return {
    iterations,
    salt: mockSalt(user),
    storedKey: crypto.randomBytes(32),
    serverKey: crypto.randomBytes(32),
  };
}

/** A plain-text empty password, or the md5 hash of one. */
function isEmptyPassword(user: string, secret: UserSecret | undefined): boolean {
  if (secret?.kind === "plain") return secret.secret === "";
  return secret?.kind === "md5" && secret.secret.toLowerCase() === md5Secret(user, "");
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

async function scramMatches(secret: string, password: string): Promise<boolean> {
  const parsed = parseScramSecret(secret);
  if (parsed === null) return false;
  const derived = await scramSecretFromPassword(password, parsed.iterations, parsed.salt);
  return crypto.timingSafeEqual(derived.storedKey, parsed.storedKey);
}
