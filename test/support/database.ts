// The database URL the app's tests must use. The data path under test is app → pooler → PostgreSQL,
// so this starts our pooler (transaction pooling, as in the tutorial) in front of the test server.
import { inject } from "vitest";
import { startTestPooler } from "./pooler.ts";

export interface AppDatabase {
  /** app → pooler URL (DATABASE_URL for the app) */
  url: string;
  /** direct URL, for test setup and assertions only */
  directUrl: string;
  close(): Promise<void>;
}

export async function appDatabase(): Promise<AppDatabase> {
  const pooler = await startTestPooler({ DEFAULT_POOL_SIZE: "5" });
  return { url: pooler.url("app"), directUrl: inject("pgAppUrl"), close: pooler.stop };
}
