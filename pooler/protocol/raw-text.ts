// Values the pooler must hand back byte for byte, held in ordinary strings (the parameter maps are
// shared and compared as strings, params.ts). PostgreSQL takes a startup parameter's bytes as they
// come, in the server's encoding, never converted from client_encoding nor checked: decoded as
// UTF-8, "caf\xe9" would read as "caf\ufffd" and reach the server as those three bytes. So a byte
// that must stay a byte is held as the lone surrogate U+DC80…U+DCFF (PEP 383's surrogateescape),
// which no decoded text holds: ASCII values, the common case, are unchanged strings.

const RAW_BASE = 0xdc00;
/** A byte held raw. Not a unicode regex: it matches lone surrogates, code unit by code unit. */
export const RAW_BYTE = /[\udc80-\udcff]/g;
const HAS_RAW_BYTE = /[\udc80-\udcff]/;
const NON_ASCII = /[\x80-\xff]/g;

/** The bytes as the server will take them: each one above ASCII held raw, whether UTF-8 or not. */
export function rawText(bytes: Buffer): string {
  const latin1 = bytes.toString("latin1");
  return latin1.replace(NON_ASCII, (c) => String.fromCharCode(RAW_BASE + c.charCodeAt(0)));
}

/**
 * A value as encode(…, 'escape') writes the bytea of its bytes (the session probe's rawSetting):
 * backslashes doubled, each byte above ASCII in octal, the rest as it was. The server's bytes,
 * whatever client_encoding carried them: replayed, they are those bytes again.
 */
export function fromEscaped(escaped: string): string {
  if (!escaped.includes("\\")) return escaped;
  return escaped.replace(/\\(\\|[0-7]{3})/g, (_, e: string) =>
    e === "\\" ? e : String.fromCharCode(RAW_BASE + parseInt(e, 8)),
  );
}

export function hasRawBytes(value: string): boolean {
  return HAS_RAW_BYTE.test(value);
}

/** The bytes a value stands for: raw bytes as themselves, the rest as UTF-8. */
export function bytesOf(value: string): Buffer {
  if (!hasRawBytes(value)) return Buffer.from(value, "utf8");
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < RAW_BASE + 0x80 || code > RAW_BASE + 0xff) continue;
    parts.push(Buffer.from(value.slice(from, i), "utf8"), Buffer.of(code - RAW_BASE));
    from = i + 1;
  }
  parts.push(Buffer.from(value.slice(from), "utf8"));
  return Buffer.concat(parts);
}

/** The octal escape of a raw byte in an E'…' literal: that byte, in the server's encoding, unconverted. */
export function octalEscape(raw: string): string {
  return `\\${(raw.charCodeAt(0) - RAW_BASE).toString(8)}`;
}
