// The proxy as a process of its own, started the way the DaemonSet starts it
// (the same V8 flags, a config file, NODE_NAME and HOST_IP from the
// environment), for tests and benchmarks that need a real process: kill -9,
// reloads, /proc readings.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { PROXY_NODE_FLAGS } from "../../components/proxy-daemonset";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { httpGet } from "./net";
import { waitFor } from "./wait";

/** The built proxy (`npm run build`). */
export const PROXY_MAIN = join(__dirname, "..", "..", "proxy", "dist", "main.js");

/** Node's arguments for the proxy with `configPath`, `nodeArgs` (a profiler, say) before the script. */
export function proxyArgv(configPath: string, nodeArgs: readonly string[] = [], main = PROXY_MAIN): string[] {
  return [...PROXY_NODE_FLAGS, ...nodeArgs, main, "--config", configPath];
}

/** The proxy process for one node, as the DaemonSet runs it, with its output kept. */
export class ProxyProcess {
  output = "";
  private proc: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly node: string,
    readonly ip: string,
    readonly adminPort: number,
    private readonly configPath: string,
  ) {}

  static async write(configPath: string, config: ProxyConfig): Promise<void> {
    await writeFile(configPath, stringify(config));
  }

  get pid(): number {
    if (this.proc?.pid === undefined) throw new Error(`proxy ${this.node} is not running`);
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    const proc = spawn(process.execPath, proxyArgv(this.configPath), {
      env: { ...process.env, NODE_NAME: this.node, HOST_IP: this.ip },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const keep = (c: Buffer): void => {
      this.output += c.toString();
      // Bounded: a soak runs for many minutes.
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    await waitFor(
      `proxy ${this.node} to be ready`,
      async () => this.running && (await httpGet(this.ip, this.adminPort, "/admin/ready", { timeoutMs: 2000 })).status === 200,
      { timeoutMs: 20_000, detail: () => `; its output:\n${this.output.slice(-3000)}` },
    );
  }

  /** SIGKILL: no drain, no goodbye to peers, as when a node or a container dies. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<number | null> {
    if (!this.running) return this.exited;
    this.proc!.kill("SIGTERM");
    const timer = setTimeout(() => this.proc?.kill("SIGKILL"), 30_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
