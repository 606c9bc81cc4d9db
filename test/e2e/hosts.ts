// Emulated hosts: one network namespace per Kubernetes node, each with its own
// address on a bridge in the root namespace, where the control plane listens.
// Addresses come from 198.18.0.0/15 (RFC 2544, reserved for benchmarking), so
// they can never collide with a real network. Every name carries the ztm-
// prefix so an interrupted run's leftovers can be found and removed.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export const BRIDGE = "ztm-br0";
export const GATEWAY = "198.18.0.1";
const PREFIX = 24;

export interface Host {
  readonly name: string;
  /** Network namespace the host's processes run in. */
  readonly netns: string;
  readonly ip: string;
}

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run("ip", args);
  return stdout;
}

async function quietly(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch {
    // Teardown of something already gone.
  }
}

export function hostsFor(names: readonly string[]): Host[] {
  return names.map((name, i) => ({ name, netns: `ztm-${name}`, ip: `198.18.0.${11 + i}` }));
}

/** Creates the bridge and one namespace per host; removes leftovers of earlier runs first. */
export async function createHosts(hosts: readonly Host[]): Promise<void> {
  await destroyHosts();
  await ip("link", "add", BRIDGE, "type", "bridge");
  await ip("addr", "add", `${GATEWAY}/${PREFIX}`, "dev", BRIDGE);
  await ip("link", "set", BRIDGE, "up");
  for (const h of hosts) {
    const outside = `${h.netns}-h`.slice(0, 15);
    await ip("netns", "add", h.netns);
    await ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", h.netns);
    await ip("link", "set", outside, "master", BRIDGE);
    await ip("link", "set", outside, "up");
    await ip("-n", h.netns, "link", "set", "lo", "up");
    await ip("-n", h.netns, "addr", "add", `${h.ip}/${PREFIX}`, "dev", "eth0");
    await ip("-n", h.netns, "link", "set", "eth0", "up");
    await ip("-n", h.netns, "route", "add", "default", "via", GATEWAY);
  }
}

/** Kills whatever still runs in the ztm- namespaces and removes them and the bridge. */
export async function destroyHosts(): Promise<void> {
  const list = await ip("netns", "list").catch(() => "");
  for (const line of list.split("\n")) {
    const ns = line.split(" ")[0];
    if (ns === undefined || !ns.startsWith("ztm-")) continue;
    const pids = (await ip("netns", "pids", ns).catch(() => ""))
      .split("\n")
      .map((p) => Number(p))
      .filter((p) => p > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already exited.
      }
    }
    await quietly(() => ip("netns", "delete", ns));
  }
  const links = await ip("-o", "link", "show").catch(() => "");
  for (const m of links.matchAll(/^\d+: (ztm-[^:@]+)[:@]/gm)) {
    await quietly(() => ip("link", "delete", m[1]!));
  }
}

/** argv that runs `argv` inside the host's network namespace. */
export function inHost(host: Host, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", host.netns, ...argv];
}
