// Runs code with another working directory: PgBouncer (and so the pooler) takes relative paths in
// a pgbouncer.ini (%include, auth_file) from the working directory.
import path from "node:path";

/** Runs `fn` with `file`'s folder as the working directory, restored afterwards. */
export function inDirectoryOf<T>(file: string, fn: () => T): T {
  const previous = process.cwd();
  process.chdir(path.dirname(file));
  try {
    return fn();
  } finally {
    process.chdir(previous);
  }
}
