// Typed builders and parsers for the PostgreSQL v3 messages the pooler itself writes or reads.
// Everything the pooler merely relays never passes through here.
import { isAscii, isUtf8 } from "node:buffer";
import { bytesOf, hasRawBytes, rawText } from "./raw-text.ts";

/** Message type bytes, named as in PostgreSQL's protocol.h. */
export const Msg = {
  // backend → frontend
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
  // frontend → backend
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Parse: 0x50, // P
  Password: 0x70, // p (also SASLInitialResponse, SASLResponse)
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;

/** Authentication request codes (the int32 after 'R'). */
export const Auth = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export type TransactionStatus = "I" | "T" | "E";

/** Writes type + length + body assembled by `fill` into one exactly sized buffer. */
function build(type: number, bodyLen: number, fill: (buf: Buffer, at: number) => void): Buffer {
  const buf = Buffer.allocUnsafe(5 + bodyLen);
  buf[0] = type;
  buf.writeUInt32BE(4 + bodyLen, 1);
  fill(buf, 5);
  return buf;
}

/** Writes `s` and its terminating NUL at `at`; returns where the next field starts. */
function writeCString(buf: Buffer, s: string, at: number): number {
  const end = at + buf.write(s, at, "utf8");
  buf[end] = 0;
  return end + 1;
}

function cstrings(...parts: string[]): Buffer {
  let length = 0;
  for (const p of parts) length += Buffer.byteLength(p, "utf8") + 1;
  const buf = Buffer.allocUnsafe(length);
  let at = 0;
  for (const p of parts) at = writeCString(buf, p, at);
  return buf;
}

function withBody(type: number, body: Buffer): Buffer {
  return build(type, body.length, (buf, at) => body.copy(buf, at));
}

export function authenticationOk(): Buffer {
  return authRequest(Auth.Ok);
}

export function authRequest(code: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  return build(Msg.Authentication, 4 + extra.length, (buf, at) => {
    buf.writeInt32BE(code, at);
    extra.copy(buf, at + 4);
  });
}

export function authenticationSASL(mechanisms: string[]): Buffer {
  return authRequest(Auth.SASL, Buffer.concat([cstrings(...mechanisms), Buffer.alloc(1)]));
}

// A dozen of these go to every client at login: written in place, not assembled from pieces.
export function parameterStatus(name: string, value: string): Buffer {
  // a startup value held raw is told back as the bytes the client sent, as PostgreSQL does
  if (hasRawBytes(value))
    return withBody(Msg.ParameterStatus, Buffer.concat([cstrings(name), bytesOf(value), Buffer.alloc(1)]));
  const length = Buffer.byteLength(name, "utf8") + Buffer.byteLength(value, "utf8") + 2;
  return build(Msg.ParameterStatus, length, (buf, at) =>
    writeCString(buf, value, writeCString(buf, name, at)),
  );
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return build(Msg.BackendKeyData, 8, (buf, at) => {
    buf.writeInt32BE(pid, at);
    buf.writeInt32BE(secret, at + 4);
  });
}

const READY: Record<TransactionStatus, Buffer> = {
  I: build(Msg.ReadyForQuery, 1, (b, at) => (b[at] = 0x49)),
  T: build(Msg.ReadyForQuery, 1, (b, at) => (b[at] = 0x54)),
  E: build(Msg.ReadyForQuery, 1, (b, at) => (b[at] = 0x45)),
};

export function readyForQuery(status: TransactionStatus): Buffer {
  return READY[status];
}

export interface ErrorFields {
  severity: "ERROR" | "FATAL" | "PANIC" | "WARNING" | "NOTICE" | "LOG" | "INFO" | "DEBUG";
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function noticeFields(f: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  const field = (tag: string, value: string | undefined): void => {
    if (value !== undefined) parts.push(Buffer.from(tag, "latin1"), cstrings(value));
  };
  field("S", f.severity);
  field("V", f.severity);
  field("C", f.code);
  field("M", f.message);
  field("D", f.detail);
  field("H", f.hint);
  parts.push(Buffer.alloc(1));
  return Buffer.concat(parts);
}

export function errorResponse(f: ErrorFields): Buffer {
  return withBody(Msg.ErrorResponse, noticeFields(f));
}

/** An ErrorResponse from fields as `parseErrorFields` returns them (all of them, in order). */
export function errorResponseFrom(fields: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, value] of fields) parts.push(Buffer.from(tag, "latin1"), cstrings(value));
  parts.push(Buffer.alloc(1));
  return withBody(Msg.ErrorResponse, Buffer.concat(parts));
}

export function noticeResponse(f: ErrorFields): Buffer {
  return withBody(Msg.NoticeResponse, noticeFields(f));
}

export function commandComplete(tag: string): Buffer {
  return withBody(Msg.CommandComplete, cstrings(tag));
}

export function emptyQueryResponse(): Buffer {
  return build(Msg.EmptyQueryResponse, 0, () => undefined);
}

/** RowDescription for text columns of the given type OIDs (admin console result sets). */
export function rowDescription(columns: { name: string; typeOid: number; typeLen: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(columns.length, 0);
  for (const c of columns) {
    const meta = Buffer.alloc(18);
    meta.writeInt32BE(0, 0); // table oid
    meta.writeInt16BE(0, 4); // column number
    meta.writeInt32BE(c.typeOid, 6);
    meta.writeInt16BE(c.typeLen, 10);
    meta.writeInt32BE(-1, 12); // typmod
    meta.writeInt16BE(0, 16); // text format
    parts.push(cstrings(c.name), meta);
  }
  return withBody(Msg.RowDescription, Buffer.concat(parts));
}

export function dataRow(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(values.length, 0);
  for (const v of values) {
    const len = Buffer.alloc(4);
    if (v === null) {
      len.writeInt32BE(-1, 0);
      parts.push(len);
    } else {
      const data = Buffer.from(v, "utf8");
      len.writeInt32BE(data.length, 0);
      parts.push(len, data);
    }
  }
  return withBody(Msg.DataRow, Buffer.concat(parts));
}

export function query(sql: string): Buffer {
  return withBody(Msg.Query, cstrings(sql));
}

// ---- extended query protocol (the pooler injects some of these; tests drive servers with them) ----

/** Parse: `name` "" is the unnamed statement; `paramTypes` are type OIDs (0 = let the server infer). */
export function parse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const types = Buffer.allocUnsafe(2 + 4 * paramTypes.length);
  types.writeInt16BE(paramTypes.length, 0);
  paramTypes.forEach((oid, i) => types.writeUInt32BE(oid, 2 + 4 * i));
  return withBody(Msg.Parse, Buffer.concat([cstrings(name, sql), types]));
}

/** Bind with text-format parameters (null = SQL NULL) and text results unless `resultFormats` says otherwise. */
export function bind(
  portal: string,
  statement: string,
  params: readonly (string | null)[] = [],
  resultFormats: readonly number[] = [],
): Buffer {
  const parts: Buffer[] = [cstrings(portal, statement), int16s([0]), int16s([params.length])];
  for (const p of params) {
    const len = Buffer.allocUnsafe(4);
    if (p === null) {
      len.writeInt32BE(-1, 0);
      parts.push(len);
    } else {
      const data = Buffer.from(p, "utf8");
      len.writeInt32BE(data.length, 0);
      parts.push(len, data);
    }
  }
  parts.push(int16s([resultFormats.length, ...resultFormats]));
  return withBody(Msg.Bind, Buffer.concat(parts));
}

function int16s(values: readonly number[]): Buffer {
  const buf = Buffer.allocUnsafe(2 * values.length);
  values.forEach((v, i) => buf.writeInt16BE(v, 2 * i));
  return buf;
}

/** Describe or Close target: a prepared statement ('S') or a portal ('P'). */
export type Target = "S" | "P";

export function describe(target: Target, name: string): Buffer {
  return withBody(Msg.Describe, Buffer.concat([Buffer.from(target, "latin1"), cstrings(name)]));
}

export function close(target: Target, name: string): Buffer {
  return withBody(Msg.Close, Buffer.concat([Buffer.from(target, "latin1"), cstrings(name)]));
}

export function execute(portal = "", maxRows = 0): Buffer {
  const body = Buffer.concat([cstrings(portal), Buffer.alloc(4)]);
  body.writeInt32BE(maxRows, body.length - 4);
  return withBody(Msg.Execute, body);
}

const SYNC = build(Msg.Sync, 0, () => undefined);
const FLUSH = build(Msg.Flush, 0, () => undefined);
const PARSE_COMPLETE = build(Msg.ParseComplete, 0, () => undefined);
const CLOSE_COMPLETE = build(Msg.CloseComplete, 0, () => undefined);

export function sync(): Buffer {
  return SYNC;
}

export function flush(): Buffer {
  return FLUSH;
}

/** CopyData (either direction). */
export function copyData(data: Buffer): Buffer {
  return withBody(Msg.CopyData, data);
}

export function copyDone(): Buffer {
  return build(Msg.CopyDone, 0, () => undefined);
}

/** CopyFail: the client abandons its COPY FROM STDIN with this reason. */
export function copyFail(reason: string): Buffer {
  return withBody(Msg.CopyFail, cstrings(reason));
}

export function parseComplete(): Buffer {
  return PARSE_COMPLETE;
}

export function closeComplete(): Buffer {
  return CLOSE_COMPLETE;
}

/**
 * Where the prepared statement's name lies in a Parse, Bind, Describe or Close message: the byte
 * range of the name without its NUL. Describe and Close name a portal instead when their target
 * byte is 'P' (see `target`).
 */
export function statementNameSpan(type: number, msg: Buffer): { start: number; end: number } {
  let start = 5;
  if (type === Msg.Bind)
    start = msg.indexOf(0, 5) + 1; // after the portal name
  else if (type === Msg.Describe || type === Msg.Close) start = 6; // after the target byte
  const end = msg.indexOf(0, start);
  if (start === 0 || end < 0) throw new RangeError("unterminated statement name");
  return { start, end };
}

/** The target byte of a Describe or Close message. */
export function target(msg: Buffer): Target {
  return msg[5] === 0x53 ? "S" : "P";
}

/** A copy of `msg` with the bytes [start, end) replaced by `name`, its length fixed. */
/**
 * `msg` with another statement name. `msg` may be only the start of a message whose rest streams
 * behind it: the length in its header is adjusted, not recomputed from what is here.
 */
export function withStatementName(msg: Buffer, span: { start: number; end: number }, name: Buffer): Buffer {
  const delta = name.length - (span.end - span.start);
  const out = Buffer.allocUnsafe(msg.length + delta);
  msg.copy(out, 0, 0, span.start);
  name.copy(out, span.start);
  msg.copy(out, span.start + name.length, span.end);
  out.writeUInt32BE(msg.readUInt32BE(1) + delta, 1);
  return out;
}

export function terminate(): Buffer {
  return build(Msg.Terminate, 0, () => undefined);
}

export function passwordMessage(password: string): Buffer {
  return withBody(Msg.Password, cstrings(password));
}

export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const payload = Buffer.from(data, "utf8");
  const len = Buffer.alloc(4);
  len.writeInt32BE(payload.length, 0);
  return withBody(Msg.Password, Buffer.concat([cstrings(mechanism), len, payload]));
}

export function saslResponse(data: string): Buffer {
  return withBody(Msg.Password, Buffer.from(data, "utf8"));
}

/** The untyped packet that opens a server connection. */
export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).map(([k, v]) => cstrings(k, v)), Buffer.alloc(1)]);
  const buf = Buffer.allocUnsafe(8 + body.length);
  buf.writeInt32BE(8 + body.length, 0);
  buf.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(buf, 8);
  return buf;
}

export function sslRequest(): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeInt32BE(8, 0);
  buf.writeInt32BE(SSL_REQUEST_CODE, 4);
  return buf;
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const buf = Buffer.allocUnsafe(16);
  buf.writeInt32BE(16, 0);
  buf.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  buf.writeInt32BE(pid, 8);
  buf.writeInt32BE(secret, 12);
  return buf;
}

// ---- parsers ----

export type StartupPacket =
  /**
   * `params` decoded as UTF-8 (names, user and database); `notUtf8`: those whose values are not
   * UTF-8, decoded with U+FFFD for each bad sequence; `raw`: the values as the server takes them,
   * byte for byte (raw-text.ts), for settings.
   */
  | { kind: "startup"; params: Map<string, string>; notUtf8: Set<string>; raw: Map<string, string> }
  | { kind: "ssl" }
  | { kind: "gssenc" }
  | { kind: "cancel"; pid: number; secret: number }
  | { kind: "unsupported"; version: number };

export function parseStartupPacket(packet: Buffer): StartupPacket {
  const code = packet.readUInt32BE(4);
  if (code === SSL_REQUEST_CODE) return { kind: "ssl" };
  if (code === GSSENC_REQUEST_CODE) return { kind: "gssenc" };
  if (code === CANCEL_REQUEST_CODE) {
    if (packet.length !== 16) throw new RangeError("malformed CancelRequest");
    return { kind: "cancel", pid: packet.readInt32BE(8), secret: packet.readInt32BE(12) };
  }
  if (code >> 16 !== 3) return { kind: "unsupported", version: code };
  const params = new Map<string, string>();
  const notUtf8 = new Set<string>();
  const raw = new Map<string, string>();
  let pos = 8;
  for (;;) {
    const keyEnd = packet.indexOf(0, pos);
    if (keyEnd < 0) throw new RangeError("unterminated startup parameter name");
    if (keyEnd === pos) break; // the final empty name
    const valEnd = packet.indexOf(0, keyEnd + 1);
    if (valEnd < 0) throw new RangeError("unterminated startup parameter value");
    const name = packet.toString("utf8", pos, keyEnd);
    const bytes = packet.subarray(keyEnd + 1, valEnd);
    const value = bytes.toString("utf8");
    params.set(name, value);
    if (!isUtf8(bytes)) notUtf8.add(name);
    raw.set(name, isAscii(bytes) ? value : rawText(bytes));
    pos = valEnd + 1;
  }
  return { kind: "startup", params, notUtf8, raw };
}

/** Reads NUL-terminated strings from a message body. */
export class BodyReader {
  private pos: number;
  constructor(
    private readonly buf: Buffer,
    start = 5,
  ) {
    this.pos = start;
  }
  cstring(): string {
    return this.cstringBytes().toString("utf8");
  }
  /** A NUL-terminated string's bytes, not decoded. */
  cstringBytes(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new RangeError("unterminated string in message");
    const b = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  bytes(n: number): Buffer {
    // subarray would quietly give fewer: a length field that overstates its data is malformed
    if (n > this.buf.length - this.pos) throw new RangeError("field longer than the rest of the message");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
}

export function parseParameterStatus(msg: Buffer): [string, string] {
  const r = new BodyReader(msg);
  return [r.cstring(), r.cstring()];
}

/** Fields of an ErrorResponse/NoticeResponse keyed by their one-letter tag. */
export function parseErrorFields(msg: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = 5;
  while (pos < msg.length && msg[pos] !== 0) {
    const tag = String.fromCharCode(msg[pos]!);
    const end = msg.indexOf(0, pos + 1);
    if (end < 0) break;
    fields.set(tag, msg.toString("utf8", pos + 1, end));
    pos = end + 1;
  }
  return fields;
}
