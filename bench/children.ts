// Every process the benchmark starts goes through here, so that all of them are
// stopped on the way out: normal end, error, Ctrl-C, or the overall time limit.
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

const running = new Set<ChildProcess>();
/** Grandchildren (nginx workers) that would outlive a SIGKILLed parent. */
const extraPids = new Set<number>();

export function trackExtraPid(pid: number): void {
  extraPids.add(pid);
}

export function untrackExtraPid(pid: number): void {
  extraPids.delete(pid);
}

export interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

/** Spawns a long-running process whose stdout and stderr go to `logFile`. */
export function startDaemon(cmd: string, args: readonly string[], logFile: string, opts: SpawnOptions = {}): Started {
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  running.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (err) => {
      running.delete(child);
      log.write(`spawn failed: ${err.message}\n`);
      resolve("spawn-error");
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  return { child, pid: child.pid, exited };
}

export interface RunResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion, killing it after `timeoutMs`. */
export function runTool(cmd: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code: "spawn-error", stdout, stderr: `${stderr}${err.message}` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr });
    });
  });
}

/** Asks a process to stop with `signal`, and kills it if it has not exited after `graceMs`. */
export async function stop(s: Started, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<number | string> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill(signal);
  const timer = setTimeout(() => s.child.kill("SIGKILL"), graceMs);
  const code = await s.exited;
  clearTimeout(timer);
  return code;
}

/** Last resort (process exit): SIGKILL whatever is still running. Synchronous. */
export function killAllSync(): void {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
  for (const pid of extraPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  extraPids.clear();
}
