// The pooler logs JSON lines with pino; `verbose` (PgBouncer's -v / VERBOSE) lowers the level.
import { pino, type Logger } from "pino";
import { ConfigError } from "./config/errors.ts";

export type { Logger };

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** LOG_LEVEL (as the app's) unless VERBOSE asks for more; a level pino does not know stops the start. */
export function createLogger(verbose: number, destination?: pino.DestinationStream): Logger {
  const wanted = process.env.LOG_LEVEL || "info";
  if (!LEVELS.includes(wanted)) {
    throw new ConfigError(`LOG_LEVEL: expected one of ${LEVELS.join(", ")}, got ${JSON.stringify(wanted)}`);
  }
  const level = verbose >= 2 ? "trace" : verbose === 1 ? "debug" : wanted;
  return pino({ name: "pooler", level, base: { pid: process.pid } }, destination);
}
