// PgBouncer's janitor reads auth_file again whenever the file changes (loader_users_check, several
// times a second), so a userlist.txt that a script rewrites applies without RELOAD, and SET auth_file
// takes up the other file. A file that cannot be read keeps the users last read, as there.
import fs from "node:fs";
import path from "node:path";
import { readAuthUsers, type PoolerConfig, type UserSecret } from "./config/index.ts";

export class AuthFileWatch {
  /** The file as last read: its path and what stat says of it ("" when not set). */
  private seen: string;

  /** `config`: the configuration whose auth file has just been read. */
  constructor(config: PoolerConfig) {
    this.seen = signature(config.authFile);
  }

  /** After a RELOAD, which has read the file itself. */
  read(config: PoolerConfig): void {
    this.seen = signature(config.authFile);
  }

  /**
   * The users of `config`'s auth file if it changed since last read; throws ConfigError (once per
   * change) when it cannot be read.
   */
  changed(config: PoolerConfig): Map<string, UserSecret> | undefined {
    const now = signature(config.authFile);
    if (now === this.seen) return undefined;
    this.seen = now;
    return readAuthUsers(config);
  }
}

function signature(file: string | undefined): string {
  if (file === undefined) return "";
  const resolved = path.resolve(file);
  try {
    const s = fs.statSync(resolved);
    return [resolved, s.dev, s.ino, s.mode, s.uid, s.gid, s.size, s.mtimeMs].join(":");
  } catch (err) {
    return `${resolved}:${(err as NodeJS.ErrnoException).code ?? "unreadable"}`;
  }
}
