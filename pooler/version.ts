// The PgBouncer release the pooler presents itself as: its console's columns, defaults and answers
// follow that release, and monitoring tools read the version to know which to expect.
export const PGBOUNCER_VERSION = "1.25.2";
