import pg from "pg";
import { describe, expect, inject, it } from "vitest";

describe("embedded PostgreSQL 13 + migrations", () => {
  it("runs PostgreSQL 13 with the migrated schema and Prisma's bookkeeping", async () => {
    const client = new pg.Client({ connectionString: inject("pgAppUrl") });
    await client.connect();
    try {
      const v = await client.query<{ server_version_num: string }>("SHOW server_version_num");
      expect(Number(v.rows[0]!.server_version_num)).toBeGreaterThanOrEqual(130000);
      expect(Number(v.rows[0]!.server_version_num)).toBeLessThan(140000);
      const m = await client.query<{ migration_name: string; finished_at: Date | null }>(
        'SELECT migration_name, finished_at FROM "_prisma_migrations"',
      );
      expect(m.rows.map((r) => r.migration_name)).toContain("20261125090000_init");
      expect(m.rows.every((r) => r.finished_at !== null)).toBe(true);
      const t = await client.query("SELECT to_regclass('core_post') AS t");
      expect(t.rows[0].t).toBe("core_post");
    } finally {
      await client.end();
    }
  });
});
