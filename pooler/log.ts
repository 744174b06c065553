// The pooler logs JSON lines with pino; `verbose` (PgBouncer's -v / VERBOSE) lowers the level.
import { pino, type Logger } from "pino";
import { ConfigError } from "./config/errors.ts";

type FileStream = ReturnType<typeof pino.destination>;

export type { Logger };

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function createLogger(verbose: number, destination?: pino.DestinationStream): Logger {
  return pino({ name: "pooler", level: logLevel(verbose), base: { pid: process.pid } }, destination);
}

/**
 * LOG_LEVEL (as the app's) unless VERBOSE asks for more; a level pino does not know stops the start.
 * SET verbose and RELOAD set it again, as PgBouncer's verbose applies at once.
 */
export function logLevel(verbose: number): string {
  const wanted = process.env.LOG_LEVEL || "info";
  if (!LEVELS.includes(wanted)) {
    throw new ConfigError(`LOG_LEVEL: expected one of ${LEVELS.join(", ")}, got ${JSON.stringify(wanted)}`);
  }
  return verbose >= 2 ? "trace" : verbose === 1 ? "debug" : wanted;
}

/**
 * Where the program's log lines go: stdout, and with PgBouncer's `logfile` that file as well,
 * appended to. RELOAD and SIGHUP open it again (`setFile`), so that logrotate can move it away, as
 * PgBouncer keeps it: a file that cannot be opened stops the start, and a reload keeps the old one.
 */
export class LogDestination implements pino.DestinationStream {
  private readonly stdout = pino.destination({ dest: 1, sync: true });
  private file: FileStream | null = null;
  /** The file written to besides stdout, if any. */
  path: string | undefined;

  write(line: string): void {
    this.stdout.write(line);
    this.file?.write(line);
  }

  /** Opens `path` (again), or stops writing to a file (undefined); throws ConfigError if it cannot. */
  setFile(path: string | undefined): void {
    const old = this.file;
    let opened: FileStream | null = null;
    if (path !== undefined && path !== "") {
      try {
        opened = pino.destination({ dest: path, append: true, sync: true });
      } catch (err) {
        throw new ConfigError(`logfile: cannot open ${path}: ${(err as Error).message}`);
      }
      opened.on("error", (err: Error) => console.error(`pooler: writing ${path}: ${err.message}`));
    }
    this.file = opened;
    this.path = opened === null ? undefined : path;
    old?.end();
  }
}
