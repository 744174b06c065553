import { defineConfig } from "prisma/config";

// Only the Prisma CLI reads this file. It must talk to PostgreSQL directly, never through the
// transaction-mode pooler: Prisma Migrate holds a session advisory lock.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DIRECT_DATABASE_URL ?? process.env.POSTGRES_DATABASE_URL ?? "" },
});
