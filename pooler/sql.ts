// Quoting for the SQL the pooler writes itself (parameter sync, the session probe).

/**
 * An E'…' literal: it means the same whatever the session's standard_conforming_strings is, which a
 * client may have turned off — with '…', a value holding a backslash could end the string early.
 */
export function quoteLiteral(value: string): string {
  return `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** A "…" identifier, each part of a dotted name quoted on its own. */
export function quoteIdent(name: string): string {
  return name
    .split(".")
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join(".");
}
