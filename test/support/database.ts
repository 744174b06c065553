// The database URL the app's tests must use. The data path under test is app → pooler → PostgreSQL,
// so this starts our pooler in front of the test PostgreSQL (see test/support/pooler.ts).
import { inject } from "vitest";

export interface AppDatabase {
  /** app → pooler URL (DATABASE_URL for the app) */
  url: string;
  /** direct URL, for test setup and assertions only */
  directUrl: string;
  close(): Promise<void>;
}

export async function appDatabase(): Promise<AppDatabase> {
  // Until the pooler lands this is the direct URL; the lead switches it to the pooler.
  const directUrl = inject("pgAppUrl");
  return { url: directUrl, directUrl, close: async () => {} };
}
