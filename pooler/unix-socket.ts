// Unix-domain sockets, named as PostgreSQL and PgBouncer name them: <dir>/.s.PGSQL.<port>. The
// listener binds one in unix_socket_dir; a [databases] entry whose host= is a directory (or is
// missing) connects through one. A "directory" starting with @ is a name in Linux's abstract
// namespace, as libpq, PostgreSQL and PgBouncer read it: no file, so no stale one to replace and
// no mode or group. Neither side speaks TLS over them, as libpq, PostgreSQL and PgBouncer do not:
// the kernel is the only wire.
import fs from "node:fs";
import net from "node:net";
import nodePath from "node:path";

/** A [databases] host that names a socket directory (or an abstract name, @…) rather than a TCP host. */
export function isSocketDir(host: string): boolean {
  return host.startsWith("/") || isAbstract(host);
}

function isAbstract(dirOrPath: string): boolean {
  return dirOrPath.startsWith("@");
}

/** The name net.connect and listen take: the kernel's leading NUL byte where we (and libpq) write @. */
function kernelPath(path: string): string {
  return isAbstract(path) ? `\0${path.slice(1)}` : path;
}

/** A socket error's message naming an abstract socket with @, as libpq and /proc/net/unix do, not with Node's NUL byte. */
export function socketErrorText(err: Error): string {
  return err.message.replaceAll("\0", "@");
}

export function unixSocketPath(dir: string, port: number): string {
  return `${dir}/.s.PGSQL.${port}`;
}

/**
 * sun_path's room on Linux; libuv would silently bind a truncated name. An abstract name has no
 * closing NUL and could take one byte more, but libpq and PostgreSQL refuse it past this too.
 */
const MAX_SOCKET_PATH = 107;

/** Why a socket path cannot be used, in libpq's words, or null. */
export function socketPathProblem(path: string): string | null {
  const n = Buffer.byteLength(path);
  return n > MAX_SOCKET_PATH
    ? `Unix-domain socket path "${path}" is too long (maximum ${MAX_SOCKET_PATH} bytes)`
    : null;
}

/** The socket could not be bound (a missing or unwritable directory): the pooler may go on over TCP. */
export class UnixBindError extends Error {}

/**
 * What a server connection dials for a [databases] host=: the host itself, or unix_socket_dir when
 * host= is missing (as PgBouncer); and TLS only over TCP.
 */
export function dialTarget<T>(
  host: string,
  unixSocketDir: string,
  tls: T | null,
): { host: string; tls: T | null } {
  // a relative unix_socket_dir is the working directory's, as for the listener
  const dir = isAbstract(unixSocketDir) ? unixSocketDir : nodePath.resolve(unixSocketDir);
  const resolved = host === "" ? dir : host;
  return { host: resolved, tls: isSocketDir(resolved) ? null : tls };
}

/**
 * Where net.connect goes for a server's host (already resolved: a TCP host or a socket directory);
 * `lookup` resolves a host name (the pooler's DNS cache).
 */
export function serverEndpoint(host: string, port: number, lookup: net.LookupFunction): net.NetConnectOpts {
  return isSocketDir(host) ? { path: kernelPath(unixSocketPath(host, port)) } : { host, port, lookup };
}

/**
 * Binds `server` to the pooler's socket in `dir`. A socket file left by a pooler that died is
 * replaced; one something still listens on is refused, as PgBouncer does, rather than stolen (an
 * abstract name in use is refused the same way). Then unix_socket_mode and unix_socket_group apply
 * to the file.
 */
export async function listenUnix(
  server: net.Server,
  dir: string,
  port: number,
  opts: { mode: number; group?: string; backlog?: number },
): Promise<string> {
  const path = unixSocketPath(dir, port);
  const tooLong = socketPathProblem(path);
  if (tooLong !== null) throw new Error(`unix_socket_dir: ${tooLong}`);
  const abstract = isAbstract(path);
  // an abstract name has no file to chmod or chown: PgBouncer does not read mode or group for it
  const gid = abstract || opts.group === undefined ? undefined : groupId(opts.group);
  if (!abstract) await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void =>
      reject(
        abstract && err.code === "EADDRINUSE"
          ? listenedOn(path)
          : new UnixBindError(
              `cannot listen on unix:${path}: ${socketErrorText(err)}${notWritable(err, dir)}`,
            ),
      );
    server.once("error", failed);
    const backlog = opts.backlog === undefined ? {} : { backlog: opts.backlog };
    server.listen({ path: kernelPath(path), ...backlog }, () => {
      server.off("error", failed);
      resolve();
    });
  });
  if (abstract) return path;
  try {
    fs.chmodSync(path, opts.mode);
    if (gid !== undefined) fs.chownSync(path, -1, gid);
  } catch (err) {
    server.close();
    throw err;
  }
  return path;
}

async function removeStaleSocket(path: string): Promise<void> {
  if (!fs.existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path }, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on("error", () => resolve(false));
  });
  if (alive) throw listenedOn(path);
  fs.unlinkSync(path);
}

/** Whose permission is missing: after `user` switched the pooler, it is no longer root's. */
function notWritable(err: NodeJS.ErrnoException, dir: string): string {
  return err.code === "EACCES"
    ? ` (uid ${process.geteuid?.()}, which the pooler runs as, cannot create files in ${dir})`
    : "";
}

function listenedOn(path: string): Error {
  return new Error(`${path}: another process listens on it (a pooler already running?)`);
}

/** unix_socket_group: a group name (from /etc/group, as getgrnam reads it) or a numeric id. */
function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = fs
    .readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.split(":")[0] === group);
  const gid = line?.split(":")[2];
  if (gid === undefined || !/^\d+$/.test(gid))
    throw new Error(`unix_socket_group: no group named "${group}"`);
  return Number(gid);
}
