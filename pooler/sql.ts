// Quoting for the SQL the pooler writes itself (parameter sync, the session probe).
import { octalEscape, RAW_BYTE } from "./protocol/raw-text.ts";

/**
 * An E'…' literal: it means the same whatever the session's standard_conforming_strings is, which a
 * client may have turned off — with '…', a value holding a backslash could end the string early.
 */
export function quoteLiteral(value: string): string {
  // a byte held raw (raw-text.ts) goes as an octal escape: the server's byte, whatever the
  // session's client_encoding would have made of it (checked there: not UTF-8, a UTF8 database
  // refuses it, 22021)
  return `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''").replace(RAW_BYTE, octalEscape)}'`;
}

/** A "…" identifier, each part of a dotted name quoted on its own. */
export function quoteIdent(name: string): string {
  return name
    .split(".")
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join(".");
}
