import { pino, type Logger } from "pino";
import type { AppConfig } from "./config.ts";

/** Fields that carry credentials; pino replaces them before anything is written. */
export const REDACTED_PATHS = [
  "req.headers.cookie",
  "req.headers.authorization",
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  "req.body.password",
  "req.body.old_password",
  "req.body.new_password1",
  "req.body.new_password2",
  "req.body._csrf",
];

export function createLogger(level: AppConfig["logLevel"]): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } });
}
