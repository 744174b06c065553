// PgBouncer's auth_file (userlist.txt): `"username" "secret"` per line, `""` for a quote inside a field,
// `;` comment lines. PgBouncer ignores whatever follows the second field (src/loader.c, load_auth_file).

import { isUtf8 } from "node:buffer";
import fs from "node:fs";
import { ConfigError } from "./errors.ts";
import type { UserSecret } from "./types.ts";

const FIELD = String.raw`"((?:[^"]|"")*)"`;
// PgBouncer skips anything but a quote between the two fields.
const LINE = new RegExp(String.raw`^${FIELD}[^"\n]*${FIELD}`);

export function classifySecret(secret: string): UserSecret["kind"] {
  if (/^md5[0-9a-f]{32}$/i.test(secret)) return "md5";
  if (secret.startsWith("SCRAM-SHA-256$")) return "scram";
  return "plain";
}

/**
 * `file` only labels error messages. A user listed twice keeps the last line, as in PgBouncer.
 * `notUtf8`: the numbers of the lines whose bytes were not UTF-8.
 */
export function parseUserlist(
  text: string,
  file: string,
  notUtf8: ReadonlySet<number> = new Set(),
): Map<string, UserSecret> {
  const users = new Map<string, UserSecret>();
  text.split("\n").forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith(";")) return;
    // PgBouncer compares names and passwords byte for byte; decoded, every bad sequence reads as
    // U+FFFD, and passwords that differ would compare equal
    if (notUtf8.has(i + 1)) throw new ConfigError(`${file}:${i + 1}: not valid UTF-8`);
    const m = LINE.exec(line);
    if (m === null) {
      // The line is not echoed: it may hold a password.
      throw new ConfigError(
        `${file}:${i + 1}: expected "username" "password", both in double quotes ("" for a quote inside)`,
      );
    }
    const name = unquote(m[1] ?? "");
    const secret = unquote(m[2] ?? "");
    users.set(name, { name, kind: classifySecret(secret), secret });
  });
  return users;
}

export function readUserlist(path: string): Map<string, UserSecret> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `auth_file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  return parseUserlist(bytes.toString("utf8"), path, notUtf8Lines(bytes));
}

function notUtf8Lines(bytes: Buffer): Set<number> {
  const lines = new Set<number>();
  if (isUtf8(bytes)) return lines;
  for (let start = 0, n = 1; start <= bytes.length; n++) {
    const end = bytes.indexOf(0x0a, start);
    if (!isUtf8(bytes.subarray(start, end < 0 ? bytes.length : end))) lines.add(n);
    if (end < 0) break;
    start = end + 1;
  }
  return lines;
}

export function formatUserlistLine(name: string, secret: string): string {
  return `${quote(name)} ${quote(secret)}`;
}

function unquote(field: string): string {
  return field.replaceAll('""', '"');
}

function quote(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}
