// Who holds npm start's data directory: a live PostgreSQL is recognised however the directory is
// named (a symlink to it, say), and its postmaster.pid is never taken for a stale one.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dataDirHolder,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from "../../scripts/lib/embedded-postgres.ts";
import { freePort } from "../support/ports.ts";

describe("dataDirHolder", () => {
  let base: string;
  let dataDir: string;
  let postgres: EmbeddedPostgres;

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), "try-ts-pooler-holder-"));
    // as root, PostgreSQL runs as `postgres` and must reach its data
    fs.chmodSync(base, 0o755);
    fs.mkdirSync(path.join(base, "real"), { mode: 0o755 });
    dataDir = path.join(base, "real", "postgres");
    postgres = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  });

  afterAll(async () => {
    await postgres?.stop();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it("finds the running PostgreSQL through a symlink to its data directory, and leaves its pid file", () => {
    fs.symlinkSync(path.join(base, "real"), path.join(base, "link"));
    const pidFile = path.join(dataDir, "postmaster.pid");
    const pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
    expect(dataDirHolder(dataDir)).toEqual({ kind: "owned", pid, owner: process.pid });
    expect(dataDirHolder(path.join(base, "link", "postgres"))).toEqual({
      kind: "owned",
      pid,
      owner: process.pid,
    });
    expect(fs.existsSync(pidFile)).toBe(true);
  });
});
