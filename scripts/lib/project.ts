// Paths and small helpers shared by the npm scripts, whether they run from scripts/*.ts (tsx) or
// from dist/scripts/*.js (the Docker image, plain node).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (dir === path.dirname(dir)) throw new Error(`no package.json above ${from}`);
  }
}

/** The folder holding package.json: the repository, or /app in the image. */
export const projectRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

export const migrationsDir = path.join(projectRoot, "prisma", "migrations");

/** A connection URL fit for logs: the password replaced by "***". */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparsable URL>";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
