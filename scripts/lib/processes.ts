// Child-process supervision for `npm start`: runs the pooler and the app as Node children with their
// output prefixed, stops everything in reverse start order (app, pooler, PostgreSQL) on Ctrl-C, and
// brings everything down when one of them dies on its own.
import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  name: string;
  /** Resolves when the process has exited, for whatever reason. */
  exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export function describeExit({ code, signal }: ExitInfo): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** Writes each line of `input` to `output` as "[name] line". */
export function pipeLines(name: string, input: Readable, output: Writable): void {
  readline.createInterface({ input, crlfDelay: Infinity }).on("line", (line) => {
    output.write(`[${name}] ${line}\n`);
  });
}

/** Stops a child whose parent is gone: this module's sibling, .ts or compiled .js as this one is. */
const exitWithParent = fileURLToPath(
  new URL(`./exit-with-parent${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

/**
 * Runs a TypeScript (through tsx's loader) or JavaScript entry point with this Node binary.
 * The child gets its own process group (detached): a terminal's Ctrl-C then reaches only us, and we
 * stop the children one by one in a safe order instead of all of them dying at once.
 */
export function startNodeChild(
  name: string,
  entry: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; nodeFlags?: readonly string[] },
): Child {
  const flags = options.nodeFlags ?? [];
  const loaders = entry.endsWith(".ts") ? ["--import", "tsx"] : [];
  const args = [...flags, ...loaders, "--import", exitWithParent, entry];
  const proc = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  pipeLines(name, proc.stdout, process.stdout);
  pipeLines(name, proc.stderr, process.stderr);
  const exited = new Promise<ExitInfo>((resolve) => {
    proc.once("exit", (code, signal) => resolve({ code, signal }));
    // spawn failures (e.g. EAGAIN) emit "error" and no "exit"
    proc.once("error", () => resolve({ code: null, signal: null }));
  });
  const running = () => proc.exitCode === null && proc.signalCode === null;
  // Last resort if we exit without stopping it (an uncaught error): never leave it running.
  process.once("exit", () => {
    if (running()) proc.kill("SIGTERM");
  });
  return {
    name,
    exited,
    async stop(graceMs = 10_000) {
      if (!running()) return exited;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
  };
}

interface Service {
  name: string;
  stop(): Promise<unknown>;
}

/**
 * Owns everything `npm start` started. Stops them in reverse order of registration on SIGINT/SIGTERM/SIGHUP
 * (exit 0), on an error (exit 1) or when a watched child exits by itself (exit 1).
 */
export class Supervisor {
  readonly #services: Service[] = [];
  #shutdown: Promise<never> | undefined;

  constructor(private readonly log: (line: string) => void) {
    // SIGHUP: the terminal was closed (or the SSH session dropped), which would otherwise kill us
    // without stopping the children, each in a process group of its own.
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      // A repeated signal (npm and tsx forward Ctrl-C too) must not interrupt an orderly stop.
      process.on(signal, () => void this.shutdown(0, `received ${signal}, shutting down`));
    }
    // Whoever started us (npm) died without passing a signal on, e.g. killed with SIGKILL: we are
    // re-parented, and stop rather than leave the services running with no one to stop them.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) void this.shutdown(0, "the process that started us exited, shutting down");
    }, 1000).unref();
  }

  get stopping(): boolean {
    return this.#shutdown !== undefined;
  }

  add(name: string, stop: () => Promise<unknown>): void {
    this.#services.push({ name, stop });
  }

  /** Registers the child and treats its exit, unless we are stopping, as a failure of the whole. */
  watch(child: Child): void {
    this.add(child.name, () => child.stop());
    void child.exited.then((info) => {
      if (!this.stopping) {
        void this.shutdown(1, `${child.name} exited unexpectedly (${describeExit(info)}), shutting down`);
      }
    });
  }

  /** Logs `reason`, stops everything (once; later calls wait for the first) and exits with `code`. */
  shutdown(code: number, reason: string): Promise<never> {
    this.#shutdown ??= this.#stopAll(code, reason);
    return this.#shutdown;
  }

  async #stopAll(code: number, reason: string): Promise<never> {
    this.log(reason);
    // pop(): a service registered while we were stopping the others is stopped too.
    for (let service = this.#services.pop(); service; service = this.#services.pop()) {
      this.log(`stopping ${service.name}`);
      try {
        await service.stop();
      } catch (err) {
        this.log(`could not stop ${service.name}: ${err instanceof Error ? err.message : String(err)}`);
        code ||= 1;
      }
    }
    this.log(code === 0 ? "stopped" : `stopped (exit code ${code})`);
    process.exit(code);
  }
}
