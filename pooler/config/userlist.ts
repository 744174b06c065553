// PgBouncer's auth_file (userlist.txt): `"username" "secret"` per line, `""` for a quote inside a field,
// `;` comment lines. PgBouncer ignores whatever follows the second field (src/loader.c, load_auth_file).

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

/** `file` only labels error messages. A user listed twice keeps the last line, as in PgBouncer. */
export function parseUserlist(text: string, file: string): Map<string, UserSecret> {
  const users = new Map<string, UserSecret>();
  text.split("\n").forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith(";")) return;
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
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `auth_file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  return parseUserlist(text, path);
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
