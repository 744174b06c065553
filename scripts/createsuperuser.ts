// `npm run createsuperuser [-- --no-input --username NAME --email ADDRESS]`: see app/cli/createsuperuser.ts.
// Writes through DATABASE_URL, i.e. through the pooler, like the app.
import { loadDatabaseConfig, ConfigError } from "../app/config.ts";
import { connectDatabase } from "../app/db.ts";
import { createSuperuser } from "../app/cli/createsuperuser.ts";

// As Django's KeyboardInterrupt, wherever it comes (a prompt on a terminal has readline's own).
process.once("SIGINT", () => {
  process.stderr.write("\nOperation cancelled.\n");
  process.exit(1);
});

try {
  const db = connectDatabase(loadDatabaseConfig());
  try {
    const { stdin, stdout, stderr } = process;
    const io = { stdin, stdout, stderr, interactive: Boolean(stdin.isTTY) };
    process.exitCode = await createSuperuser(db.prisma, io, process.argv.slice(2), process.env);
  } finally {
    await db.close();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exitCode = 1;
}
