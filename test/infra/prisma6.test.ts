// tools/prisma6: Prisma's own schema engine (Prisma 6, WASM, offline) on our schema and migrations.
// Skipped unless the tool is installed (`npm ci --prefix tools/prisma6`, which .ci/run does).
// One file on purpose: the scripts share tools/prisma6/.schema.prisma, so they must not run in parallel.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const tool = path.join(root, "tools", "prisma6");
const installed = fs.existsSync(path.join(tool, "node_modules", ".bin", "prisma"));

function runTool(script: string, args: string[], env: NodeJS.ProcessEnv) {
  return run(path.join(tool, script), args, { env: { ...process.env, ...env } });
}

describe.skipIf(!installed)("tools/prisma6", () => {
  it("finds prisma/migrations in line with prisma/schema.prisma", async () => {
    const { stdout } = await runTool("check-migrations.sh", [], {
      DIRECT_DATABASE_URL: inject("pgAdminUrl"),
    });
    expect(stdout).toContain("prisma/migrations matches prisma/schema.prisma.");
  });

  it("takes no URL from DATABASE_URL, which names the pooler here", async () => {
    // Through a transaction-mode pooler the shadow database cannot be dropped (a pooled server still
    // sits in it): the run failed and left the shadow database behind.
    const failure = await runTool("check-migrations.sh", [], {
      DATABASE_URL: inject("pgAdminUrl"),
      DIRECT_DATABASE_URL: undefined,
      POSTGRES_DATABASE_URL: undefined,
    }).catch((err: { code: number; stderr: string }) => err);
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toMatch(/^set DIRECT_DATABASE_URL .*\(not the pooler\)/m);
  });

  it("fails when the schema has a change that no migration holds", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prisma6-schema-"));
    const schema = path.join(dir, "schema.prisma");
    const original = fs.readFileSync(path.join(root, "prisma", "schema.prisma"), "utf8");
    const changed = original.replace(/^(model Post \{\n)/m, "$1  published Boolean @default(false)\n");
    expect(changed).not.toBe(original);
    fs.writeFileSync(schema, changed);
    try {
      const failure = await runTool("check-migrations.sh", [], {
        DIRECT_DATABASE_URL: inject("pgAdminUrl"),
        SCHEMA: schema,
      }).catch((err: { code: number; stderr: string }) => err);
      expect(failure).toMatchObject({ code: 1 });
      expect((failure as { stderr: string }).stderr).toMatch(
        /ALTER TABLE "core_post" ADD COLUMN +"published"/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets Prisma's engine read the history that npm run migrate wrote", async () => {
    // global-setup migrated the app database with scripts/lib/migrations.ts
    const { stdout } = await runTool("prisma.sh", ["migrate", "status"], {
      DIRECT_DATABASE_URL: inject("pgAppUrl"),
    });
    expect(stdout).toContain("Database schema is up to date!");
  });
});
