// The three fuzz targets as generators of cases: each case is a script played on its own connection
// (the startup packet; the md5 / SCRAM exchange after a valid start; the framing after a login).
import { md5Response } from "../../pooler/protocol/auth/md5.ts";
import { SASL_MECHANISM, ScramClientSession } from "../../pooler/protocol/auth/scram.ts";
import {
  Auth,
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  Msg,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
  bind,
  describe,
  execute,
  flush,
  parse,
  passwordMessage,
  query,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  sync,
  terminate,
} from "../../pooler/protocol/messages.ts";
import { lyingLength, mutateBytes, oddText, typed, untyped } from "./mutate.ts";
import type { WireMessage, WireProbe } from "../support/wire-probe.ts";
import type { Rng } from "./rng.ts";

export const TARGETS = ["startup", "auth", "framing"] as const;
export type TargetName = (typeof TARGETS)[number];

/** Who the cases log in as: an md5 user and a SCRAM user known to the pooler, on one database. */
export interface FuzzLogins {
  database: string;
  md5: { user: string; password: string };
  scram: { user: string; password: string };
}

/** What the verdict must know of how a case ended. */
export interface CaseEnd {
  /** Well-formed SSLRequest / GSSENCRequest packets sent: each may be answered by a bare 'N'. */
  sslRequests: number;
  /** The case itself asked to leave (Terminate, CancelRequest): a close without an error is right. */
  mayCloseSilently: boolean;
}

export interface FuzzCase {
  target: TargetName;
  /** What was sent, for the failure report. */
  label: string;
  run(probe: WireProbe): Promise<CaseEnd>;
}

const WAIT_MS = 5000;
/** The content type of a TLS record carrying a handshake: a ClientHello's first byte. */
const TLS_HANDSHAKE_RECORD = 0x16;

export function makeCase(target: TargetName, rng: Rng, logins: FuzzLogins): FuzzCase {
  switch (target) {
    case "startup":
      return startupCase(rng, logins);
    case "auth":
      return authCase(rng, logins);
    case "framing":
      return framingCase(rng, logins);
  }
}

/** Sends `bytes` whole or in random pieces. */
async function deliver(probe: WireProbe, rng: Rng, bytes: Buffer): Promise<void> {
  if (rng.chance(0.4)) await probe.sendSplit(bytes, (n) => rng.int(n));
  else probe.send(bytes);
}

// ---- (a) the startup packet ----

function cstr(s: Buffer | string): Buffer {
  return Buffer.concat([typeof s === "string" ? Buffer.from(s, "utf8") : s, Buffer.alloc(1)]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function startupParams(rng: Rng, l: FuzzLogins): Buffer {
  const user = rng.pick<Buffer | string>([
    l.md5.user,
    l.scram.user,
    "",
    `nobody_${rng.int(1000)}`,
    oddText(rng),
  ]);
  const db = rng.pick<Buffer | string>([l.database, "no_such_db", "pgbouncer", "", oddText(rng)]);
  const pairs: [Buffer | string, Buffer | string][] = [];
  if (rng.chance(0.9)) pairs.push(["user", user]);
  if (rng.chance(0.8)) pairs.push(["database", db]);
  for (let i = rng.int(4); i > 0; i--) {
    pairs.push(
      rng.pick<[Buffer | string, Buffer | string]>([
        ["application_name", oddText(rng)],
        ["options", rng.pick(["-c search_path=public", "-c", "--x", "-c work_mem=bogus", "-c a.b=1 -c"])],
        ["options", oddText(rng)],
        ["replication", "1"],
        ["statement_timeout", rng.pick(["1s", "bogus", "-1"])],
        ["client_encoding", rng.pick(["UTF8", "LATIN1", "bogus"])],
        ["fuzz.custom", oddText(rng)],
        [oddText(rng, 12), oddText(rng)],
        ["user", user],
      ]),
    );
  }
  const body = Buffer.concat([...pairs.flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.alloc(1)]);
  // a missing NUL somewhere in the list
  return rng.chance(0.15) ? body.subarray(0, body.length - rng.range(1, 3)) : body;
}

function startupCase(rng: Rng, l: FuzzLogins): FuzzCase {
  const sslRequests = rng.chance(0.2) ? rng.range(1, 2) : 0;
  const prefix = Array.from({ length: sslRequests }, () =>
    untyped(int32(rng.chance(0.5) ? SSL_REQUEST_CODE : GSSENC_REQUEST_CODE)),
  );
  let body: Buffer;
  let what: string;
  let mayCloseSilently = false;
  switch (rng.int(6)) {
    case 0:
    case 1:
    case 2: {
      const version = rng.chance(0.85)
        ? PROTOCOL_3_0
        : rng.pick([0x00020000, 0x00030001, 0x00040000, 0x04d21234, rng.next()]);
      body = Buffer.concat([int32(version), startupParams(rng, l)]);
      what = `startup v${version >>> 16}.${version & 0xffff}`;
      break;
    }
    case 3:
      body = Buffer.concat([
        int32(rng.pick([SSL_REQUEST_CODE, GSSENC_REQUEST_CODE])),
        rng.bytes(rng.int(3) * 4),
      ]);
      what = "SSL/GSS request";
      break;
    case 4:
      body = Buffer.concat([int32(CANCEL_REQUEST_CODE), rng.bytes(rng.pick([8, 8, 0, 4, 12]))]);
      what = "CancelRequest";
      mayCloseSilently = true;
      break;
    default:
      body = rng.bytes(rng.int(64));
      what = "random packet";
  }
  const lies = rng.chance(0.4);
  let packet = untyped(body, lies ? lyingLength(rng, body.length + 4) : body.length + 4);
  if (rng.chance(0.15)) packet = mutateBytes(rng, packet);
  const trailing = rng.chance(0.15) ? rng.bytes(rng.range(1, 64)) : Buffer.alloc(0);
  if (framesTerminate(trailing)) mayCloseSilently = true;
  // A first byte of 0x16 is a TLS handshake record (PostgreSQL 17's direct TLS), not a length: the
  // TLS client it stands for could not read a plaintext ErrorResponse, so a close is the answer
  if (sslRequests === 0 && packet[0] === TLS_HANDSHAKE_RECORD) mayCloseSilently = true;
  packet = Buffer.concat([packet, trailing]);
  const bytes = Buffer.concat([...prefix, packet]);
  return {
    target: "startup",
    label: `${what}${lies ? ", lying length" : ""}: ${bytes.subarray(0, 48).toString("hex")}`,
    async run(probe) {
      await deliver(probe, rng, bytes);
      return { sslRequests: sslRequests + 1, mayCloseSilently };
    },
  };
}

// ---- (b) the authentication exchange ----

async function challenge(probe: WireProbe): Promise<WireMessage | undefined> {
  const msgs = await probe.waitUntil((m) => m.length > 0, WAIT_MS);
  return msgs[0]?.type === "R" ? msgs[0] : undefined;
}

/** A damaged copy of a password-phase message, or something else in its place. */
function damaged(rng: Rng, good: Buffer): { bytes: Buffer; what: string } {
  switch (rng.int(6)) {
    case 0:
      return { bytes: mutateBytes(rng, good), what: "mutated" };
    case 1:
      return {
        bytes: typed(Msg.Password, good.subarray(5), lyingLength(rng, good.length - 1)),
        what: "lying length",
      };
    case 2:
      return {
        bytes: typed(Msg.Password, rng.bytes(rng.pick([0, 1, 10_001, 70_000]))),
        what: "oversize or empty",
      };
    case 3:
      return {
        bytes: typed(rng.pick([Msg.Query, Msg.Parse, Msg.Sync, 0]), good.subarray(5)),
        what: "wrong type",
      };
    case 4:
      return { bytes: good.subarray(0, rng.int(good.length)), what: "truncated" };
    default:
      return { bytes: Buffer.concat([good, query("SELECT 1")]), what: "valid, query pipelined" };
  }
}

function authCase(rng: Rng, l: FuzzLogins): FuzzCase {
  const who = rng.pick(["md5", "scram", "unknown"] as const);
  const user = who === "md5" ? l.md5.user : who === "scram" ? l.scram.user : `nobody_${rng.int(1000)}`;
  const password = who === "md5" ? l.md5.password : l.scram.password;
  const wrongPassword = rng.chance(0.3);
  let label = `${who} user${wrongPassword ? ", wrong password" : ""}`;
  return {
    target: "auth",
    get label() {
      return label;
    },
    async run(probe) {
      const end = { sslRequests: 0, mayCloseSilently: false };
      probe.send(startupMessage({ user, database: l.database }));
      const r = await challenge(probe);
      if (r === undefined) return end;
      const pw = wrongPassword ? `${password}x` : password;
      const code = r.body.readInt32BE(0);
      if (code === Auth.MD5Password) {
        const good = passwordMessage(md5Response(user, pw, r.body.subarray(4, 8)));
        const step = rng.chance(0.25) ? { bytes: good, what: "valid" } : damaged(rng, good);
        if (rng.chance(0.05)) Object.assign(step, { bytes: terminate(), what: "Terminate" });
        end.mayCloseSilently = framesTerminate(step.bytes);
        label += `; md5 PasswordMessage ${step.what}: ${step.bytes.subarray(0, 48).toString("hex")}`;
        await deliver(probe, rng, step.bytes);
        return end;
      }
      if (code !== Auth.SASL) return end;
      const scram = new ScramClientSession(pw);
      const first = scram.clientFirst();
      const initial = saslInitialResponse(SASL_MECHANISM, first);
      if (!rng.chance(0.5)) {
        const step = rng.chance(0.5) ? badInitial(rng, first) : damaged(rng, initial);
        end.mayCloseSilently = framesTerminate(step.bytes);
        label += `; SASLInitialResponse ${step.what}: ${step.bytes.subarray(0, 64).toString("hex")}`;
        await deliver(probe, rng, step.bytes);
        return end;
      }
      await deliver(probe, rng, initial);
      const cont = await probe.waitUntil((m) => m.length > 1, WAIT_MS);
      if (cont[1]?.type !== "R" || cont[1].body.readInt32BE(0) !== Auth.SASLContinue) return end;
      const serverFirst = cont[1].body.toString("utf8", 4);
      const final = await scram.handleServerFirst(serverFirst);
      const step = rng.chance(0.25)
        ? { bytes: saslResponse(final), what: "valid" }
        : rng.chance(0.5)
          ? badFinal(rng, final)
          : damaged(rng, saslResponse(final));
      end.mayCloseSilently = framesTerminate(step.bytes);
      label += `; SASLResponse ${step.what}: ${step.bytes.subarray(0, 64).toString("hex")}`;
      await deliver(probe, rng, step.bytes);
      return end;
    },
  };
}

function badInitial(rng: Rng, first: string): { bytes: Buffer; what: string } {
  const data = Buffer.from(first);
  const withLength = (mech: string, len: number, payload: Buffer): Buffer =>
    typed(Msg.Password, Buffer.concat([cstr(mech), int32(len), payload]));
  switch (rng.int(4)) {
    case 0:
      return {
        bytes: saslInitialResponse(rng.pick(["SCRAM-SHA-256-PLUS", "PLAIN", "", "scram-sha-256"]), first),
        what: "wrong mechanism",
      };
    case 1:
      return {
        bytes: withLength(SASL_MECHANISM, rng.pick([-1, -2, data.length + 10, 0x7fffffff, 3]), data),
        what: "bad inner length",
      };
    case 2: {
      const garbage = rng.pick([
        "p=tls-server-end-point,,n=,r=abc",
        "n,a=x,n=,r=abc",
        "n,,r=abc",
        "x,,n=,r=abc",
        "n,,n=,r=",
        "n,,n=,r=a\u0001b",
        "n,,m=ext,n=,r=abc",
        "n,,n=,r=abc,!bad",
        "",
      ]);
      return { bytes: saslInitialResponse(SASL_MECHANISM, garbage), what: `client-first "${garbage}"` };
    }
    default:
      return {
        bytes: withLength(SASL_MECHANISM, data.length, oddText(rng, 64)),
        what: "garbage client-first",
      };
  }
}

function badFinal(rng: Rng, final: string): { bytes: Buffer; what: string } {
  const parts = final.split(",");
  const variants: [string, () => string][] = [
    ["bad nonce", () => [parts[0], "r=" + rng.bytes(24).toString("base64"), parts[2]].join(",")],
    ["bad proof", () => [parts[0], parts[1], "p=" + rng.bytes(32).toString("base64")].join(",")],
    ["proof not base64", () => [parts[0], parts[1], "p=!!!!"].join(",")],
    ["short proof", () => [parts[0], parts[1], "p=" + rng.bytes(8).toString("base64")].join(",")],
    ["channel binding mismatch", () => ["c=eSws", parts[1], parts[2]].join(",")],
    ["extension after proof", () => `${final},x=1`],
    ["extension before proof", () => [parts[0], parts[1], "x=1", parts[2]].join(",")],
    ["truncated", () => final.slice(0, rng.int(final.length))],
    ["garbage", () => oddText(rng, 80).toString("latin1")],
  ];
  const [what, make] = rng.pick(variants);
  return { bytes: saslResponse(make()), what: `client-final ${what}` };
}

// ---- (c) framing after a successful login ----

/** Logs in as the md5 user; false if the pooler did not let it in. */
async function login(probe: WireProbe, l: FuzzLogins): Promise<boolean> {
  probe.send(startupMessage({ user: l.md5.user, database: l.database }));
  const r = await challenge(probe);
  if (r?.body.readInt32BE(0) !== Auth.MD5Password) return false;
  probe.send(passwordMessage(md5Response(l.md5.user, l.md5.password, r.body.subarray(4, 8))));
  const msgs = await probe.waitUntil((m) => m.some((x) => x.type === "Z" || x.type === "E"), WAIT_MS);
  return msgs.some((x) => x.type === "Z");
}

const SAFE_SQL = [
  "SELECT 1",
  "SELECT $1",
  "BEGIN",
  "COMMIT",
  "ROLLBACK",
  "SELECT 1/0",
  "SET application_name = 'fuzz'",
  "SELEC",
  "",
  "SELECT 1; SELECT 2",
];
/** FunctionCall ('F') is never sent: a random function OID could do anything on the shared server. */
const RANDOM_TYPES = [..."BCDEHPQSdcfp", ..."abegijklmnoqrstuvwyzAGIJKLMNORTUVWYZ0123456789"].map((c) =>
  c.charCodeAt(0),
);

function framingItem(rng: Rng): Buffer {
  const name = rng.pick(["", "s1", "POOLER_1"]);
  switch (rng.int(10)) {
    case 0:
      return query(rng.pick(SAFE_SQL));
    case 1:
      return Buffer.concat([
        parse(name, rng.pick(["SELECT $1::int", "SELECT 1", "BEGIN", "SELEC"]), [23]),
        bind("", name, [String(rng.int(100))]),
        describe("P", ""),
        execute(),
        sync(),
      ]);
    case 2:
      return rng.chance(0.5) ? sync() : flush();
    case 3:
      return typed(rng.pick(RANDOM_TYPES), rng.bytes(rng.int(40)));
    case 4: {
      const good = query(rng.pick(SAFE_SQL));
      return typed(rng.pick(RANDOM_TYPES), good.subarray(5), lyingLength(rng, good.length - 1));
    }
    case 5: {
      const good = rng.chance(0.5) ? query("SELECT 1") : parse(name, "SELECT 1");
      return good.subarray(0, rng.int(good.length)); // the rest never comes
    }
    case 6:
      return rng.bytes(rng.range(1, 32));
    case 7:
      return mutateBytes(rng, rng.chance(0.5) ? query(rng.pick(SAFE_SQL)) : bind("", name, ["1"]));
    case 8:
      return typed(rng.pick([Msg.CopyData, Msg.CopyDone, Msg.CopyFail]), rng.bytes(rng.int(16)));
    default:
      return rng.chance(0.3) ? terminate() : query("SELECT 1");
  }
}

function framingCase(rng: Rng, l: FuzzLogins): FuzzCase {
  const items = Array.from({ length: rng.range(1, 6) }, () => framingItem(rng));
  const bytes = Buffer.concat(items);
  return {
    target: "framing",
    label: `after login, ${items.length} items: ${bytes.subarray(0, 96).toString("hex")}`,
    async run(probe) {
      const end = { sslRequests: 0, mayCloseSilently: framesTerminate(bytes) };
      if (!(await login(probe, l))) return end;
      await deliver(probe, rng, bytes);
      return end;
    },
  };
}

/**
 * Whether the pooler, splitting `bytes` into messages as it does, meets a Terminate (mutations and
 * lying lengths move the boundaries, so the items sent do not tell).
 */
function framesTerminate(bytes: Buffer): boolean {
  for (let pos = 0; bytes.length - pos >= 5;) {
    const len = bytes.readUInt32BE(pos + 1);
    if (len < 4) return false;
    if (bytes[pos] === Msg.Terminate) return true;
    pos += 1 + len;
  }
  return false;
}
