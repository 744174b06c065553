// PgBouncer's `user`: the Unix user the pooler becomes once its configuration is loaded, before it
// binds a socket or writes its pidfile or log file, so that those are that user's. As PgBouncer's
// change_user (src/system.c), called from its main() right after load_config: only root can switch,
// or a process that already is that user; anything else stops the start.
import { execFileSync } from "node:child_process";
import { ConfigError } from "./config/errors.ts";

interface PasswdEntry {
  uid: number;
  gid: number;
}

/**
 * getpwnam(3), as `getent passwd` answers it. Node has no getpwnam: process.setuid takes a name but
 * does not tell the user's primary group, which setgid needs. getent asks NSS, as getpwnam does, so
 * LDAP or sssd users are found where reading /etc/passwd would miss them; it is one child process,
 * once, at start-up.
 */
function getpwnam(name: string): PasswdEntry | undefined {
  let line: string;
  try {
    line = execFileSync("getent", ["passwd", "--", name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch (err) {
    // getent's exit status 2: no such entry
    if ((err as { status?: number }).status === 2) return undefined;
    throw new ConfigError(`user: cannot look up user '${name}' with getent: ${(err as Error).message}`);
  }
  const [entryName, , uid, gid] = line.split("\n", 1)[0]!.split(":");
  // getent also takes a number for a uid, which getpwnam does not
  return entryName === name ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

/** Becomes the Unix user `name` for good (group, then user); throws a ConfigError saying why not. */
export function runAsUser(name: string): void {
  const { getuid, geteuid, getgid, setgroups, setgid, setuid } = process;
  if (!getuid || !geteuid || !getgid || !setgroups || !setgid || !setuid) {
    throw new ConfigError("user: switching users needs a Unix system (PgBouncer has no user on Windows)");
  }
  const user = getpwnam(name);
  if (user === undefined) throw new ConfigError(`user: could not find user '${name}' to switch to`);
  const before = { uid: getuid(), gid: getgid() };
  try {
    // As PgBouncer: root leaves only the user's primary group (setgroups, not initgroups), so the
    // pooler keeps none of root's groups and gains none of the user's others. The group comes
    // before the user: once the uid is not root, setgid would be refused.
    if (before.uid === 0) setgroups([user.gid]);
    setgid(user.gid);
    setuid(user.uid);
  } catch (err) {
    const why =
      before.uid === 0
        ? ""
        : ` (the pooler runs as uid ${before.uid}, gid ${before.gid}: only root can take another user's ids)`;
    throw new ConfigError(
      `user: failed to assume identity of user '${name}': ${(err as Error).message}${why}`,
    );
  }
  // PgBouncer checks too: setuid(2) by a process that is not root may change the effective uid alone
  if (getuid() !== user.uid || geteuid() !== user.uid) {
    throw new ConfigError(`user: setuid() did not make the pooler user '${name}'`);
  }
}
