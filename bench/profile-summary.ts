// Reads V8 CPU profiles (node --cpu-prof) and prints where the time went: the
// top functions by self time and by inclusive time, as shares of the busy
// (non-idle) time, and self time per source file.
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile... [--top 30]
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile... --callers writeLatin1String
import { readFile } from "node:fs/promises";
import { basename } from "node:path";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const ROOT = process.cwd();

function shortUrl(url: string): string {
  let u = url.replace(/^file:\/\//, "");
  if (u.startsWith(`${ROOT}/`)) u = u.slice(ROOT.length + 1);
  u = u.replace(/^.*\/node_modules\//, "node_modules/");
  return u;
}

function frameKey(f: CallFrame): string {
  const name = f.functionName === "" ? "(anonymous)" : f.functionName;
  if (f.url === "") return name;
  return `${name}  ${shortUrl(f.url)}:${f.lineNumber + 1}`;
}

function fileKey(f: CallFrame): string {
  if (f.url === "") return f.functionName.startsWith("(") ? f.functionName : "(native)";
  return shortUrl(f.url);
}

const SPECIAL_IDLE = "(idle)";

/** Inclusive time of functions named `name`, split by the frame that called them. */
export function callersOf(p: CpuProfile, name: string): [string, number][] {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    let callee: ProfileNode | undefined;
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (n.callFrame.functionName === name) callee = n;
      else if (callee !== undefined) {
        const k = `${frameKey(n.callFrame)}  ->  ${frameKey(callee.callFrame)}`;
        out.set(k, (out.get(k) ?? 0) + dt);
        break;
      }
    }
  }
  return [...out.entries()].sort((a, b) => b[1] - a[1]);
}

export interface ProfileTable {
  readonly file: string;
  readonly totalMs: number;
  readonly idleMs: number;
  readonly self: [string, number][];
  readonly inclusive: [string, number][];
  readonly byFile: [string, number][];
}

export function analyze(file: string, p: CpuProfile): ProfileTable {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // The time until the next sample is the time this sample stands for.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(p.samples[i]!);
    if (node === undefined) continue;
    total += dt;
    if (node.callFrame.functionName === SPECIAL_IDLE) {
      idle += dt;
      continue;
    }
    const k = frameKey(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    const fk = fileKey(node.callFrame);
    files.set(fk, (files.get(fk) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (n.callFrame.functionName === "(root)") break;
      const key = frameKey(n.callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + dt);
    }
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { file, totalMs: total, idleMs: idle, self: sorted(self), inclusive: sorted(incl), byFile: sorted(files) };
}

export function renderProfile(t: ProfileTable, top: number, label?: string): string {
  const busy = t.totalMs - t.idleMs;
  const pct = (ms: number): string => `${((ms / busy) * 100).toFixed(1).padStart(5)}%`;
  const lines = [
    `== ${label ?? basename(t.file)}: ${(t.totalMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy (${((busy / t.totalMs) * 100).toFixed(0)}%)`,
    `-- top ${top} by self time (share of busy time)`,
    ...t.self.slice(0, top).map(([k, ms]) => `${pct(ms)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${k}`),
    `-- top ${top} by inclusive time`,
    ...t.inclusive.slice(0, top).map(([k, ms]) => `${pct(ms)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${k}`),
    "-- self time by file",
    ...t.byFile.slice(0, 25).map(([k, ms]) => `${pct(ms)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${k}`),
  ];
  return lines.join("\n");
}

/** Summaries of several profiles; `labels` maps a pid (from the file name) to a name. */
export async function summarizeProfiles(files: readonly string[], top: number, labels: ReadonlyMap<number, string> = new Map()): Promise<string> {
  const out: string[] = [];
  for (const f of files) {
    const p = JSON.parse(await readFile(f, "utf8")) as CpuProfile;
    // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
    const pid = Number(basename(f).split(".")[3]);
    const name = labels.get(pid);
    out.push(renderProfile(analyze(f, p), top, name === undefined ? undefined : `${name} (${basename(f)})`));
  }
  return out.join("\n\n");
}

if (require.main === module) {
  const args = process.argv.slice(2);
  let top = 30;
  const i = args.indexOf("--top");
  if (i !== -1) {
    top = Number(args[i + 1]);
    args.splice(i, 2);
  }
  const c = args.indexOf("--callers");
  if (c !== -1) {
    const name = args[c + 1]!;
    args.splice(c, 2);
    (async () => {
      for (const f of args) {
        const rows = callersOf(JSON.parse(await readFile(f, "utf8")) as CpuProfile, name);
        process.stdout.write(`== callers of ${name} in ${basename(f)}\n`);
        for (const [k, ms] of rows.slice(0, top)) process.stdout.write(`${(ms / 1000).toFixed(2).padStart(7)} s  ${k}\n`);
      }
    })().catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    });
  } else
  summarizeProfiles(args, top).then(
    (s) => process.stdout.write(`${s}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
