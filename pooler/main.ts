// The pooler as a program: `node dist/pooler/main.js [pgbouncer.ini]`, configured like the
// edoburu/pgbouncer image by environment variables. SIGHUP reloads (as the console's RELOAD);
// SIGINT/SIGTERM shut down gracefully: stop accepting, let transactions finish, then close (a second
// one exits at once); SIGUSR1, SIGUSR2 and SIGQUIT are PAUSE, RESUME and SHUTDOWN, as in PgBouncer.
import { pathToFileURL } from "node:url";
import { ConfigError, loadConfig, type LoadedConfig } from "./config/index.ts";
import { pause, resume } from "./admin/control.ts";
import { createLogger, LogDestination, type Logger } from "./log.ts";
import { writePidFile } from "./pidfile.ts";
import { Pooler } from "./pooler.ts";
import { runAsUser } from "./run-as-user.ts";

/** How long a graceful shutdown waits for transactions (Docker's default stop grace is 10 s). */
function shutdownWaitMs(): number {
  const raw = process.env.SHUTDOWN_WAIT_MS || "8000";
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0) {
    throw new ConfigError(
      `SHUTDOWN_WAIT_MS: expected a whole number of milliseconds, got ${JSON.stringify(raw)}`,
    );
  }
  return ms;
}

/** Every signal main acts on; those in STOPS end the pooler. */
const SIGNALS: NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGQUIT"];
const STOPS = new Set<NodeJS.Signals>(["SIGINT", "SIGTERM", "SIGQUIT"]);

/**
 * Handlers for start-up (a slow auth_file, a listen_addr being resolved, the binds), installed
 * first as PgBouncer installs its own before it listens: left to Node, a SIGHUP would end the
 * process and a SIGTERM would leave the pidfile behind. A stop calls `stop` (no client to wait for
 * yet); the others are held. Returns what removes them, giving the signals held, in order.
 */
function holdSignals(stop: () => void): () => NodeJS.Signals[] {
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => {
    if (STOPS.has(signal)) stop();
    else held.push(signal);
  };
  for (const signal of SIGNALS) process.on(signal, hold);
  return () => {
    for (const signal of SIGNALS) process.off(signal, hold);
    return held;
  };
}

export async function main(argv: string[]): Promise<Pooler> {
  const iniPath = argv[0];
  let loaded: LoadedConfig;
  let log: Logger;
  let waitMs: number;
  let removePidFile = (): void => undefined;
  const started = holdSignals(() => {
    removePidFile();
    process.exit(0);
  });
  const logs = new LogDestination();
  try {
    // TLS keys are read here (loaded.tls), while still root, as PgBouncer 1.18 does: a key may be
    // readable by root alone
    loaded = loadConfig({ env: process.env, ...(iniPath ? { iniPath } : {}) });
    // as PgBouncer, before anything is bound or written: the log file, pidfile and socket are the user's
    if (loaded.config.user !== undefined) runAsUser(loaded.config.user);
    logs.setFile(loaded.config.logfile);
    log = createLogger(loaded.config.verbose, logs);
    waitMs = shutdownWaitMs();
    if (loaded.config.pidfile) removePidFile = writePidFile(loaded.config.pidfile);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`pooler: configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  for (const w of loaded.warnings) log.warn(w);
  let pooler: Pooler;
  try {
    pooler = await Pooler.start(loaded.config, log, loaded.tls);
  } catch (err) {
    removePidFile();
    throw err;
  }
  // RELOAD and SIGHUP open the log file again (logrotate moved it away, or logfile changed)
  pooler.onReload((config) => {
    try {
      logs.setFile(config.logfile);
    } catch (err) {
      // SHOW CONFIG says which file is written to, not which one could not be opened
      log.error(
        { err: (err as Error).message, logfile: logs.path },
        "keeping the log file open before the reload",
      );
      config.logfile = logs.path;
    }
  });

  process.on("SIGHUP", () => {
    try {
      pooler.reloadFromSource();
    } catch (err) {
      log.error({ err: (err as Error).message }, "reload failed; keeping the running configuration");
    }
  });
  const onSignal = (signal: NodeJS.Signals, action: () => unknown): void => {
    process.on(signal, () => {
      log.info({ signal }, "received signal");
      Promise.resolve()
        .then(action)
        .catch((err: Error) => log.warn({ signal, err: err.message }, "signal not acted on"));
    });
  };
  // A shutdown signal while a shutdown already waits exits at once, as PgBouncer's "fast exit" (the
  // console's SHUTDOWN then closes what is left, and exits, the pooler's way).
  const stopWithin = (ms: number) => (): unknown => {
    if (!pooler.shuttingDown) return pooler.shutdown(ms);
    removePidFile();
    process.exit(0);
  };
  onSignal("SIGINT", stopWithin(waitMs));
  onSignal("SIGTERM", stopWithin(waitMs));
  // PgBouncer's other signals: PAUSE, RESUME and an immediate SHUTDOWN. Left to Node, SIGUSR1 would
  // open its inspector to local users and SIGUSR2 would end the process with its clients.
  onSignal("SIGUSR1", () => pause(pooler, ""));
  onSignal("SIGUSR2", () => resume(pooler, ""));
  onSignal("SIGQUIT", stopWithin(0));
  // a SIGHUP, SIGUSR1 or SIGUSR2 during start-up is acted on now: a reload, a pause
  for (const signal of started()) process.emit(signal, signal);
  // however shutdown started (a signal or the console's SHUTDOWN), the process ends with it
  void pooler.stopped.then(() => {
    removePidFile();
    process.exit(0);
  });
  return pooler;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`pooler: ${err.message}`);
    process.exit(1);
  });
}
