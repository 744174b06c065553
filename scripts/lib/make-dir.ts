// mkdir -p whose error says why: Node's recursive mkdir reports ENOENT, "no such file or directory",
// for a folder it cannot make in a read-only (EROFS) or closed (EACCES) parent.
import fs from "node:fs";
import path from "node:path";

/** Makes `dir` and the folders above it; an error names the first that cannot be made, and why. */
export function makeDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    let first = dir;
    while (!fs.existsSync(path.dirname(first))) first = path.dirname(first);
    try {
      fs.mkdirSync(first); // alone, it fails with the reason
    } catch (reason) {
      throw new Error(`cannot make ${first}: ${(reason as Error).message}`);
    }
    fs.mkdirSync(dir, { recursive: true });
  }
}
