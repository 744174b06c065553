// Which errors the app answers with "the database is unavailable, nothing was saved" (503): real
// errors from real connections, outages and not.
import { describe, expect, inject, it } from "vitest";
import { CommitOutcomeUnknown, isDatabaseUnavailable } from "../../app/db-errors.ts";
import { connect, errorOf } from "../support/clients.ts";
import { freePort } from "../support/ports.ts";

describe("isDatabaseUnavailable", () => {
  it("is true for a refused connection and a terminated backend, and for what wraps them", async () => {
    const refused = await errorOf(
      connect(`postgresql://postgres:postgres@127.0.0.1:${await freePort()}/app`),
    );
    expect(isDatabaseUnavailable(refused)).toBe(true);
    const client = await connect(inject("pgAppUrl"));
    // Its own backend: what PostgreSQL's shutdown does to every session.
    const terminated = await errorOf(client.query("SELECT pg_terminate_backend(pg_backend_pid())"));
    await client.end().catch(() => undefined);
    expect((terminated as { code?: string }).code).toBe("57P01");
    expect(isDatabaseUnavailable(terminated)).toBe(true);
    expect(isDatabaseUnavailable(new CommitOutcomeUnknown(terminated))).toBe(true);
    expect(isDatabaseUnavailable(new Error("wrapped", { cause: refused }))).toBe(true);
  });

  it("is false for bad SQL, a constraint violation and other errors: those are not worth a retry", async () => {
    const client = await connect(inject("pgAppUrl"));
    try {
      expect(isDatabaseUnavailable(await errorOf(client.query("SELEC 1")))).toBe(false);
      await client.query("CREATE TEMP TABLE once (x int PRIMARY KEY)");
      await client.query("INSERT INTO once VALUES (1)");
      expect(isDatabaseUnavailable(await errorOf(client.query("INSERT INTO once VALUES (1)")))).toBe(false);
    } finally {
      await client.end();
    }
    expect(isDatabaseUnavailable(new Error("template not found"))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});
