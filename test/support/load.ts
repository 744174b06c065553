// A steady load of node-postgres clients, each running small pgbench-like transactions in a loop and
// reconnecting after any error, with every transaction's outcome and timing recorded. Unlike pgbench,
// a client survives errors, so tests can watch a fault happen and the load recover from it.
import type pg from "pg";
import { connect } from "./clients.ts";

export interface Transaction {
  start: number;
  end: number;
  ok: boolean;
  /** SQLSTATE of the error, if any. */
  code?: string;
  message?: string;
}

export interface Load {
  readonly transactions: Transaction[];
  /** Lets each client finish its transaction, then stops it. */
  stop(): Promise<void>;
}

/** Pause after an error before reconnecting, so a refusing pooler is not spun on. */
const RECONNECT_PAUSE_MS = 100;

/** `clients` clients on `url` (a database initialised by `pgbench -i`), each in a transaction loop. */
export function startLoad(url: string, clients: number): Load {
  const transactions: Transaction[] = [];
  let stopped = false;
  const one = async (c: pg.Client): Promise<void> => {
    const aid = 1 + Math.floor(Math.random() * 100_000);
    await c.query("BEGIN");
    await c.query("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = $1", [aid]);
    await c.query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", [aid]);
    await c.query("COMMIT");
  };
  const worker = async (): Promise<void> => {
    let client: pg.Client | null = null;
    while (!stopped) {
      const start = Date.now();
      try {
        client ??= await connect(url);
        await one(client);
        transactions.push({ start, end: Date.now(), ok: true });
        continue;
      } catch (err) {
        const e = err as Error & { code?: string };
        transactions.push({ start, end: Date.now(), ok: false, code: e.code, message: e.message });
        void client?.end().catch(() => undefined);
        client = null;
      }
      await new Promise((r) => setTimeout(r, RECONNECT_PAUSE_MS));
    }
    await client?.end().catch(() => undefined);
  };
  const workers = Array.from({ length: clients }, worker);
  return {
    transactions,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}
