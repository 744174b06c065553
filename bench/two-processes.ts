// Issue 6 asks whether a second process pays on two cores. This runs the built pooler as WORKERS
// processes (node:cluster: the primary accepts and hands connections round-robin to the workers),
// each with its own pools, configured from the environment as `dist/pooler/main.js` is. Give each
// DEFAULT_POOL_SIZE / WORKERS to keep the server total, then point the shared harness at it beside
// the single process (README, "Performance"). A trial, not a way to run the pooler: a worker's
// clients cannot use another's idle servers, a cancel request reaches a random worker, and each has
// its own console. Several poolers in production: `so_reuseport` with `[peers]` (README).
//
//   npm run build && WORKERS=2 DEFAULT_POOL_SIZE=10 DATABASE_URL=… LISTEN_PORT=… npx tsx bench/two-processes.ts
import cluster from "node:cluster";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { POOLER_NODE_FLAGS } from "../scripts/lib/pooler-node-flags.ts";

interface PoolerProgram {
  main(argv: string[]): Promise<unknown>;
}

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS ?? 2);
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`WORKERS: expected a count, got "${process.env.WORKERS}"`);
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...POOLER_NODE_FLAGS] });
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited (${code}); stopping`);
    process.exit(1);
  });
} else {
  const program = (await import(pathToFileURL(path.resolve("dist/pooler/main.js")).href)) as PoolerProgram;
  await program.main([]);
}
