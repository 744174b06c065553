// The web server's entry point: `tsx app/server.ts` (npm start runs it through scripts/start.ts).
// startServer() is exported so that the browser test runs the real server on a free port.
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { once } from "node:events";
import { loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { connectDatabase } from "./db.ts";
import { createSessionStore } from "./auth/session.ts";
import { createApp } from "./app.ts";
import { PoolerMonitor } from "./pooler/monitor.ts";

export interface RunningServer {
  /** where a browser on this machine reaches the app, e.g. http://127.0.0.1:8000/ */
  url: string;
  /** stops accepting requests, waits for those in flight, then closes the database connections */
  close(): Promise<void>;
}

/** A wildcard listen address is not something to type into a browser. */
function browsableHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "localhost";
  return host.includes(":") ? `[${host}]` : host;
}

export async function startServer(env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const db = connectDatabase(config, (err) => logger.warn({ err }, "idle session-store connection failed"));
  const sessionStore = createSessionStore(db.sessionPool, config.databaseSchema);
  const poolerMonitor = new PoolerMonitor({
    adminUrl: config.poolerAdminUrl,
    metricsUrl: config.poolerMetricsUrl,
  });
  const app = createApp({ config, prisma: db.prisma, sessionStore, poolerMonitor, logger });

  const server = app.listen(config.port, config.host);
  try {
    await once(server, "listening");
  } catch (err) {
    sessionStore.close();
    await db.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${browsableHost(config.host)}:${port}/`;
  logger.info({ url }, "listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          // Keep-alive connections with no request in flight would otherwise hold close() open.
          server.closeIdleConnections();
        });
        await poolerMonitor.close();
        await sessionStore.close();
        await db.close();
        logger.info("stopped");
      })()),
  };
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  return script !== undefined && import.meta.url === pathToFileURL(script).href;
}

if (isEntryPoint()) {
  try {
    const running = await startServer();
    console.log(`Post List at ${running.url}  (admin: ${running.url}admin/)  Quit with CONTROL-C.`);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        running.close().then(
          () => process.exit(0),
          (err: unknown) => {
            console.error("Shutdown failed:", err);
            process.exit(1);
          },
        );
      });
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
