// The pooler as a program of its own (node --import tsx pooler/main.ts), for tests of what only a
// process shows: signals, exit codes, start-up errors, its memory.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { POOLER_NODE_FLAGS } from "../../scripts/lib/pooler-node-flags.ts";

const MAIN = path.resolve("pooler/main.ts");

export interface PoolerProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts the pooler with `args` and `env` on top of this process's environment; the caller kills it.
 * `runner`: a command that execs it, e.g. setpriv to start it as another user (its pid stays the pooler's).
 */
export function spawnPooler(
  args: string[],
  env: Record<string, string>,
  runner: string[] = [],
): PoolerProcess {
  // node --import tsx, not the tsx CLI: the CLI is a parent process that does not relay SIGHUP
  const [command, ...commandArgs] = [
    ...runner,
    process.execPath,
    ...POOLER_NODE_FLAGS,
    "--import",
    "tsx",
    MAIN,
    ...args,
  ];
  const child = spawn(command!, commandArgs, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}
