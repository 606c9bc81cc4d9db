// CPU time and resident memory of the processes under test, read from /proc:
// utime+stime (all threads) from /proc/<pid>/stat, VmRSS from /proc/<pid>/status.
// A "process group" is one proxy: a Node proxy is one process; an nginx proxy is
// its master plus its worker(s), found by parent pid.
import { readdirSync } from "node:fs";
import { cpuSeconds, parentOf, rssBytes } from "../test/support/proc";

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
