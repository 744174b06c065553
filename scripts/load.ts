// npm run load: fires N concurrent HTTP clients at the post list (autocannon), so that the pooler's
// picture at /admin/pooler/ moves.
//
//   npm run load -- --connections 500 --duration 30 --url http://localhost:8000/
//
// The app reaches the pooler through at most DB_POOL_MAX connections (e.g. 100 for the demo, against
// 20 servers a pool), and as the app's own work is the slower part, they rarely queue. To see clients
// queue for servers, --db-clients adds clients of the pooler itself, each running transactions that
// hold a server for --db-sleep-ms, e.g. 500 of them on a pool of 20:
//
//   npm run load -- --db-clients 500 --db-url postgresql://postgres:postgres@127.0.0.1:6432/app
//
// Exits with 1 if any request failed (a non-2xx answer or a connection error) or a query failed.
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import pg from "pg";

interface LoadOptions {
  url: string;
  connections: number;
  /** seconds */
  duration: number;
  dbClients: number;
  dbUrl: string | undefined;
  dbSleepMs: number;
}

const USAGE =
  "usage: npm run load -- [--connections N] [--duration SECONDS] [--url URL] " +
  "[--db-clients N [--db-url URL] [--db-sleep-ms MS]]";

function whole(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number of at least ${min}, got "${raw}"\n${USAGE}`);
  return n;
}

function parseLoadArgs(args: string[]): LoadOptions {
  const { values } = parseArgs({
    args,
    options: {
      connections: { type: "string", default: "500" },
      duration: { type: "string", default: "30" },
      // the app npm start runs: PORT, as there
      url: { type: "string", default: `http://localhost:${process.env.PORT || "8000"}/` },
      "db-clients": { type: "string", default: "0" },
      "db-url": { type: "string", default: process.env.DATABASE_URL },
      "db-sleep-ms": { type: "string", default: "50" },
    },
  });
  const options = {
    url: values.url,
    connections: whole("connections", values.connections, 1),
    duration: whole("duration", values.duration, 1),
    dbClients: whole("db-clients", values["db-clients"], 0),
    dbUrl: values["db-url"],
    dbSleepMs: whole("db-sleep-ms", values["db-sleep-ms"], 0),
  };
  if (options.dbClients > 0 && !options.dbUrl)
    throw new Error(`--db-clients needs --db-url (or DATABASE_URL): the pooler's URL\n${USAGE}`);
  return options;
}

async function openClients(url: string, count: number): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  // In batches, so that hundreds of logins do not all hit the pooler's accept queue at once.
  while (clients.length < count) {
    const batch = Array.from({ length: Math.min(50, count - clients.length) }, async () => {
      const client = new pg.Client({ connectionString: url });
      // A connection the pooler drops fails its next query, which is counted below.
      client.on("error", () => undefined);
      await client.connect();
      return client;
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

/** Every client runs one short transaction after another until the time is up. */
async function keepBusy(
  clients: pg.Client[],
  sleepMs: number,
  until: number,
): Promise<{ transactions: number; errors: string[] }> {
  const sql = `SELECT pg_sleep(${sleepMs / 1000})`;
  let transactions = 0;
  const errors = new Set<string>();
  await Promise.all(
    clients.map(async (client) => {
      try {
        while (Date.now() < until) {
          await client.query(sql);
          transactions++;
        }
      } catch (err) {
        errors.add(err instanceof Error ? err.message : String(err));
      }
    }),
  );
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  return { transactions, errors: [...errors] };
}

async function main(): Promise<void> {
  const options = parseLoadArgs(process.argv.slice(2));
  console.log(`load: ${options.connections} connections to ${options.url} for ${options.duration} s`);
  if (options.dbClients > 0)
    console.log(
      `load: and ${options.dbClients} clients of the pooler, ${options.dbSleepMs} ms per transaction`,
    );
  // Logged in before the clock starts, so that both loads run for the whole duration together.
  const clients = options.dbClients > 0 ? await openClients(options.dbUrl!, options.dbClients) : [];
  const until = Date.now() + options.duration * 1000;
  const [r, db] = await Promise.all([
    autocannon({ url: options.url, connections: options.connections, duration: options.duration }),
    clients.length > 0 ? keepBusy(clients, options.dbSleepMs, until) : undefined,
  ]);
  console.log(`requests/s: ${Math.round(r.requests.average)} on average (${r.requests.total} in all)`);
  console.log(`latency: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
  console.log(`non-2xx responses: ${r.non2xx}, connection errors: ${r.errors} (timeouts: ${r.timeouts})`);
  if (db) {
    console.log(`pooler clients: ${Math.round(db.transactions / options.duration)} transactions/s`);
    for (const error of db.errors) console.log(`pooler clients: query failed: ${error}`);
  }
  if (r.non2xx > 0 || r.errors > 0 || (db?.errors.length ?? 0) > 0) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  console.error(`load: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
