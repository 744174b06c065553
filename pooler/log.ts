// The pooler logs JSON lines with pino; `verbose` (PgBouncer's -v / VERBOSE) lowers the level.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(verbose: number, destination?: pino.DestinationStream): Logger {
  const level = verbose >= 2 ? "trace" : verbose === 1 ? "debug" : (process.env.LOG_LEVEL ?? "info");
  return pino({ name: "pooler", level, base: { pid: process.pid } }, destination);
}
