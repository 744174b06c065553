// PgBouncer's pidfile: the process id, written at start; a file naming a process that is still
// running stops the start (two poolers on one pidfile would each believe it theirs), a stale one
// is replaced; removed at exit.
import fs from "node:fs";
import { ConfigError } from "./config/errors.ts";

/** Writes `path`; returns what removes it again (only while it still names this process). */
export function writePidFile(path: string): () => void {
  const content = `${process.pid}\n`;
  try {
    fs.writeFileSync(path, content, { flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw cannotWrite(path, err);
    const other = Number.parseInt(fs.readFileSync(path, "utf8"), 10);
    if (isRunning(other)) {
      throw new ConfigError(`pidfile: ${path} names process ${other}, which is running (another pooler?)`);
    }
    try {
      fs.writeFileSync(path, content);
    } catch (again) {
      throw cannotWrite(path, again);
    }
  }
  return () => {
    try {
      if (fs.readFileSync(path, "utf8") === content) fs.rmSync(path);
    } catch {
      // gone already: nothing to remove
    }
  };
}

function cannotWrite(path: string, err: unknown): ConfigError {
  return new ConfigError(`pidfile: cannot write ${path}: ${(err as Error).message}`);
}

/** This process's own pid counts as stale: in a container every restart is pid 1 again. */
function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
