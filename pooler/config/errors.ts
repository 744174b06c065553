/** A configuration problem. The message says where (env var, or file:line), which key and the expected form. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Thrown by the value parsers, which do not know where a value came from (env, ini file, admin SET);
 * `parseAt` turns it into a ConfigError that does.
 */
export class InvalidValue extends Error {
  constructor(readonly expected: string) {
    super(`expected ${expected}`);
  }
}

/** Runs `parse(raw)`; an InvalidValue becomes `LABEL: expected FORM, got "RAW"`. */
export function parseAt<T>(label: string, raw: string, parse: (raw: string) => T): T {
  try {
    return parse(raw);
  } catch (err) {
    if (err instanceof InvalidValue) {
      throw new ConfigError(`${label}: expected ${err.expected}, got ${JSON.stringify(raw)}`);
    }
    throw err;
  }
}
