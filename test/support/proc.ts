// What /proc says of a process: CPU time, resident memory, descriptors and
// sockets. Tests and benchmarks read a process's cost from here.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

type Pid = number | "self";

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces), from field 3 on. */
function statFields(pid: Pid): string[] | undefined {
  const text = read(`/proc/${pid}/stat`);
  return text === undefined ? undefined : text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds (user + system, every thread) a process has used, or undefined if it is gone. */
export function cpuSeconds(pid: Pid): number | undefined {
  const f = statFields(pid);
  return f === undefined ? undefined : (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** The parent's pid, or undefined if the process is gone. */
export function parentOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f === undefined ? undefined : Number(f[1]);
}

/** Resident set size in bytes, or undefined if the process is gone. */
export function rssBytes(pid: Pid = "self"): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? "");
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** Open file descriptors of a process. */
export function fdCount(pid: Pid = "self"): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Open sockets of a process (descriptors that link to socket:[inode]). */
export function socketCount(pid: Pid = "self"): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return n;
}

export interface ProcSample {
  readonly fds: number;
  readonly sockets: number;
  readonly rssMiB: number;
}

export function sample(pid: Pid = "self"): ProcSample {
  return { fds: fdCount(pid), sockets: socketCount(pid), rssMiB: Math.round((residentBytes(pid) / 1048576) * 10) / 10 };
}

/** Resident set size in bytes of a process that must be running. */
export function residentBytes(pid: Pid = "self"): number {
  const rss = rssBytes(pid);
  if (rss === undefined) throw new Error(`process ${pid} is gone`);
  return rss;
}
