// CPU time and resident memory of the processes under test, read from /proc:
// utime+stime (all threads) from /proc/<pid>/stat, VmRSS from /proc/<pid>/status.
// A "process group" is one proxy: a Node proxy is one process; an nginx proxy is
// its master plus its worker(s), found by parent pid.
import { readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, every thread) a process has used, or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; fields after its ')' are fixed.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

/** Resident set size in bytes, or undefined if the process is gone. */
export function rssBytes(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+) kB/m.exec(text);
  return m === null ? undefined : Number(m[1]) * 1024;
}

function parentOf(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The pid and its direct children (nginx workers), as they are now. */
export function withChildren(pid: number): number[] {
  const out = [pid];
  for (const name of readdirSync("/proc")) {
    const p = Number(name);
    if (Number.isInteger(p) && p > 0 && parentOf(p) === pid) out.push(p);
  }
  return out;
}

export interface ProcessGroup {
  /** What it is in the figures: "mesh-out", "nginx-in", "backend", ... */
  readonly name: string;
  /** Current pids of the group. */
  pids(): number[];
}

export interface GroupUsage {
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

/**
 * Measures CPU used by each group over a window, and samples their summed RSS
 * every `intervalMs` (0: only at start and stop), keeping the peak.
 */
export class UsageWindow {
  private readonly startCpu = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly groups: readonly ProcessGroup[],
    intervalMs = 100,
  ) {
    for (const g of groups) {
      this.startCpu.set(g.name, sum(g.pids().map(cpuSeconds)));
      this.peak.set(g.name, 0);
    }
    this.sample();
    this.timer = intervalMs > 0 ? setInterval(() => this.sample(), intervalMs) : undefined;
  }

  private sample(): void {
    for (const g of this.groups) {
      const rss = sum(g.pids().map(rssBytes));
      if (rss > (this.peak.get(g.name) ?? 0)) this.peak.set(g.name, rss);
    }
  }

  stop(): Record<string, GroupUsage> {
    clearInterval(this.timer);
    this.sample();
    const out: Record<string, GroupUsage> = {};
    for (const g of this.groups) {
      out[g.name] = {
        cpuSeconds: sum(g.pids().map(cpuSeconds)) - (this.startCpu.get(g.name) ?? 0),
        peakRssBytes: this.peak.get(g.name) ?? 0,
      };
    }
    return out;
  }
}

function sum(xs: readonly (number | undefined)[]): number {
  let t = 0;
  for (const x of xs) t += x ?? 0;
  return t;
}
