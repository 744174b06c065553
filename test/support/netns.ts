// A second host for tests of what crosses a network: a Linux network namespace joined to this one by
// a veth pair (iproute2; needs root). Taking its link down makes its peer vanish without a FIN or a
// reset, as a crashed machine or a cut cable does, which loopback cannot show.
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { promisify } from "node:util";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);
const PREFIX = "tsp-test-";

/** Root alone is not enough: a container may withhold CAP_NET_ADMIN or /run/netns. */
export function canCreateNetNamespaces(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = `${PREFIX}probe-${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", probe], { stdio: "ignore" });
    execFileSync("ip", ["netns", "del", probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Namespaces of test runs that were killed before they could remove theirs. */
async function removeLeftovers(): Promise<void> {
  const { stdout } = await run("ip", ["netns", "list"]);
  for (const [, name, pid] of stdout.matchAll(new RegExp(`^(${PREFIX}(\\d+))\\b`, "gm")))
    if (!alive(Number(pid))) await run("ip", ["netns", "del", name!]).catch(() => undefined);
}

/** Two addresses of a /30 in 10.213.0.0/16 that no interface here has an address in. */
async function freeLink(): Promise<{ host: string; peer: string }> {
  const { stdout } = await run("ip", ["-o", "-4", "addr", "show"]);
  for (;;) {
    const net = `10.213.${randomInt(256)}.`;
    const first = randomInt(64) * 4;
    if (![0, 1, 2, 3].some((i) => stdout.includes(` ${net}${first + i}/`)))
      return { host: `${net}${first + 1}`, peer: `${net}${first + 2}` };
  }
}

export interface NetNamespace {
  /** This side's address on the link: the namespace reaches the test process here. */
  readonly hostAddress: string;
  /** The namespace's address. */
  readonly peerAddress: string;
  /** Runs a program inside the namespace; `remove` kills what is still running. */
  spawn(command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /**
   * Link down on the namespace's side, once every connection to it has had its data acknowledged:
   * from then on nothing crosses. Data still unacknowledged would be retransmitted, for up to
   * tcp_retries2, and keepalive would not start.
   */
  cut(): Promise<void>;
  restore(): Promise<void>;
  remove(): Promise<void>;
}

export async function createNetNamespace(): Promise<NetNamespace> {
  // per process, so that runs in parallel clones do not meet (interface names: 15 characters at most)
  const id = process.pid;
  const name = `${PREFIX}${id}`;
  const hostDev = `tsph${id}`;
  const peerDev = `tspp${id}`;
  await removeLeftovers();
  const { host: hostAddress, peer: peerAddress } = await freeLink();
  const ip = (...args: string[]) => run("ip", args);
  const inside = (...args: string[]) => ip("netns", "exec", name, "ip", ...args);
  const children: ChildProcess[] = [];

  await ip("netns", "add", name);
  try {
    await ip("link", "add", hostDev, "type", "veth", "peer", "name", peerDev);
    await ip("link", "set", peerDev, "netns", name);
    await ip("addr", "add", `${hostAddress}/30`, "dev", hostDev);
    await ip("link", "set", hostDev, "up");
    await inside("addr", "add", `${peerAddress}/30`, "dev", peerDev);
    await inside("link", "set", peerDev, "up");
    await inside("link", "set", "lo", "up");
  } catch (err) {
    // the pair may not have reached the namespace, whose deletion would take it along
    await ip("link", "del", hostDev).catch(() => undefined);
    await ip("netns", "del", name).catch(() => undefined);
    throw err;
  }
  return {
    hostAddress,
    peerAddress,
    spawn(command, args, env) {
      const child = spawn("ip", ["netns", "exec", name, command, ...args], {
        env: env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      children.push(child);
      return child;
    },
    async cut() {
      await waitFor(async () => {
        const { stdout } = await run("ss", ["-tnH", "dst", peerAddress]);
        // State, Recv-Q, Send-Q (sent and not yet acknowledged), ...
        return stdout
          .split("\n")
          .filter((line) => line.trim() !== "")
          .every((line) => line.trim().split(/\s+/)[2] === "0");
      }, "every connection to the namespace to have its data acknowledged");
      await inside("link", "set", peerDev, "down");
    },
    restore: async () => void (await inside("link", "set", peerDev, "up")),
    async remove() {
      for (const child of children) child.kill("SIGKILL");
      // deleting the namespace deletes its end of the pair, and with it this one
      await ip("netns", "del", name);
    },
  };
}
