// The figures one benchmark run produces, and what is derived from them: the
// terminal table, the four targets for the mesh path, and the JSON file.

export const PATHS = ["direct", "mesh", "reference"] as const;
export type PathName = (typeof PATHS)[number];
export const PATH_LABEL: Record<PathName, string> = {
  direct: "(a) direct",
  mesh: "(b) zt-mesh",
  reference: "(c) nginx",
};

export const SIZES = ["0", "1k", "64k"] as const;
export type SizeName = (typeof SIZES)[number];
export const SIZE_LABEL: Record<SizeName, string> = { "0": "0 B", "1k": "1 KiB", "64k": "64 KiB" };
export const SIZE_BYTES: Record<SizeName, number> = { "0": 0, "1k": 1024, "64k": 65536 };

export const RATES = [500, 2000] as const;

export interface MaxThroughput {
  readonly tool: "wrk";
  readonly connections: number;
  readonly durationS: number;
  readonly requests: number;
  readonly rps: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx responses. */
  readonly errors: number;
  /** wrk's own latency at saturation: not corrected, for information only. */
  readonly latencyMs: { readonly p50: number; readonly p99: number };
}

export interface FixedRate {
  readonly tool: "oha";
  readonly targetRps: number;
  readonly connections: number;
  readonly durationS: number;
  readonly requests: number;
  readonly achievedRps: number;
  readonly errors: number;
  /** Corrected for coordinated omission: measured from each request's scheduled start. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number };
}

export interface ProcessFigures {
  /** CPU seconds per 10,000 requests during the maximum-throughput run. */
  readonly cpuPer10kAtMax: number;
  /** CPU seconds per 10,000 requests during the 2000 req/s run. */
  readonly cpuPer10kAt2000: number | null;
  /** Highest RSS seen during any measurement of this path and size (MiB). */
  readonly peakRssMiB: number;
}

export interface HandshakeFigures {
  /** How the count was taken. */
  readonly method: string;
  readonly handshakes: number;
  readonly requests: number;
  readonly per10k: number;
}

export interface PathResult {
  readonly path: PathName;
  readonly size: SizeName;
  readonly max: MaxThroughput;
  readonly fixed: Record<string, FixedRate>;
  /** Per process (mesh-out, mesh-in, ref-out, ref-in, backend). */
  readonly processes: Record<string, ProcessFigures>;
  /** TLS handshakes between the hops after warm-up; null for the direct path. */
  readonly tlsHandshakes: HandshakeFigures | null;
}

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly tools: Record<string, string>;
  readonly loadAverageStart: readonly number[];
  readonly loadAverageEnd: readonly number[];
}

export interface BenchReport {
  readonly schema: "zt-mesh-bench/1";
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly quick: boolean;
  readonly machine: Machine;
  readonly settings: Record<string, unknown>;
  readonly results: PathResult[];
  readonly targets: TargetCheck[];
}

export interface TargetCheck {
  readonly target: string;
  readonly size: SizeName | "all";
  readonly pass: boolean;
  /** The ratio or figure compared with the limit. */
  readonly value: number;
  readonly limit: number;
  readonly detail: string;
}

export function find(results: readonly PathResult[], path: PathName, size: SizeName): PathResult | undefined {
  return results.find((r) => r.path === path && r.size === size);
}

const MESH_PROCS = ["mesh-out", "mesh-in"] as const;
const RSS_LIMIT_MIB = 80;

/** The four targets for the mesh path (b), each as a ratio taken in this run. */
export function checkTargets(results: readonly PathResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const size of SIZES) {
    const a = find(results, "direct", size);
    const b = find(results, "mesh", size);
    const c = find(results, "reference", size);
    if (b === undefined || c === undefined) continue;
    const ratio = b.max.rps / c.max.rps;
    out.push({
      target: "throughput ≥ 0.5 × (c)",
      size,
      pass: ratio >= 0.5,
      value: ratio,
      limit: 0.5,
      detail: `${fmt(b.max.rps, 0)} vs ${fmt(c.max.rps, 0)} req/s`,
    });
    const b500 = b.fixed["500"];
    const c500 = c.fixed["500"];
    const a500 = a?.fixed["500"];
    if (a500 !== undefined && b500 !== undefined && c500 !== undefined) {
      const addedB = b500.latencyMs.p99 - a500.latencyMs.p99;
      const addedC = c500.latencyMs.p99 - a500.latencyMs.p99;
      // A reference that adds nothing (or less than nothing, by noise) leaves no
      // room: the ratio is then taken against a floor of 0.01 ms.
      const r = addedB / Math.max(addedC, 0.01);
      out.push({
        target: "added p99 @500/s ≤ 2 × (c)'s",
        size,
        pass: r <= 2,
        value: r,
        limit: 2,
        detail: `(b) +${fmt(addedB, 3)} ms vs (c) +${fmt(addedC, 3)} ms over (a) ${fmt(a500.latencyMs.p99, 3)} ms`,
      });
    }
  }
  const meshResults = results.filter((r) => r.path === "mesh");
  if (meshResults.length > 0) {
    let worst = 0;
    const parts: string[] = [];
    for (const p of MESH_PROCS) {
      const peak = Math.max(...meshResults.map((r) => r.processes[p]?.peakRssMiB ?? 0));
      worst = Math.max(worst, peak);
      parts.push(`${p} ${fmt(peak, 1)} MiB`);
    }
    out.push({
      target: "RSS per proxy under load ≤ 80 MiB",
      size: "all",
      pass: worst <= RSS_LIMIT_MIB,
      value: worst,
      limit: RSS_LIMIT_MIB,
      detail: parts.join(", "),
    });
    const hs = meshResults.reduce((t, r) => t + (r.tlsHandshakes?.handshakes ?? 0), 0);
    const reqs = meshResults.reduce((t, r) => t + (r.tlsHandshakes?.requests ?? 0), 0);
    out.push({
      target: "TLS handshakes after warm-up = 0",
      size: "all",
      pass: hs === 0,
      value: hs,
      limit: 0,
      detail: `${hs} handshakes in ${reqs} requests`,
    });
  }
  return out;
}

export function fmt(x: number | null | undefined, digits: number): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The terminal table: one row per (size, path), then the ratios and the targets. */
export function renderTable(report: BenchReport): string {
  const lines: string[] = [];
  const cols: [string, number][] = [
    ["size", 7], ["path", 12], ["max req/s", 10], ["p50@500", 8], ["p99@500", 8], ["p99.9@500", 10],
    ["p50@2000", 9], ["p99@2000", 9], ["p99.9@2000", 11], ["CPU s/10k out|in", 17], ["RSS MiB out|in", 15], ["TLS hs/10k", 11],
  ];
  lines.push(cols.map(([h, w], i) => pad(h, w, i > 1)).join(" "));
  lines.push(cols.map(([, w]) => "-".repeat(w)).join(" "));
  for (const size of SIZES) {
    for (const path of PATHS) {
      const r = find(report.results, path, size);
      if (r === undefined) continue;
      const procs = path === "mesh" ? ["mesh-out", "mesh-in"] : path === "reference" ? ["ref-out", "ref-in"] : [];
      const f5 = r.fixed["500"];
      const f2 = r.fixed["2000"];
      // A path that could not keep up with the rate: its corrected latencies are queueing time.
      const behind = (f: FixedRate | undefined): string => (f !== undefined && f.achievedRps < 0.95 * f.targetRps ? "!" : "");
      const cpu = procs.length === 0 ? "-" : procs.map((p) => fmt(r.processes[p]?.cpuPer10kAtMax, 2)).join(" | ");
      const rss = procs.length === 0 ? "-" : procs.map((p) => fmt(r.processes[p]?.peakRssMiB, 1)).join(" | ");
      const row = [
        SIZE_LABEL[size], PATH_LABEL[path], fmt(r.max.rps, 0),
        fmt(f5?.latencyMs.p50, 3) + behind(f5), fmt(f5?.latencyMs.p99, 3) + behind(f5), fmt(f5?.latencyMs.p999, 3) + behind(f5),
        fmt(f2?.latencyMs.p50, 3) + behind(f2), fmt(f2?.latencyMs.p99, 3) + behind(f2), fmt(f2?.latencyMs.p999, 3) + behind(f2),
        cpu, rss, r.tlsHandshakes === null ? "-" : fmt(r.tlsHandshakes.per10k, 2),
      ];
      lines.push(row.map((v, i) => pad(v, cols[i]![1], i > 1)).join(" "));
    }
  }
  lines.push("latency in ms, corrected for coordinated omission (oha -q RATE --latency-correction); max req/s: wrk, keep-alive");
  lines.push("! = the path did not reach 95% of the requested rate: those latencies are mostly queueing (achieved rates in the JSON)");
  lines.push("CPU: user+system seconds of each proxy process per 10,000 requests in the max-throughput run");
  lines.push("");
  lines.push("Ratios (b)/(a) and (b)/(c):");
  for (const size of SIZES) {
    const a = find(report.results, "direct", size);
    const b = find(report.results, "mesh", size);
    const c = find(report.results, "reference", size);
    if (b === undefined) continue;
    const parts = [`  ${pad(SIZE_LABEL[size], 7)}`];
    if (a !== undefined) parts.push(`throughput ${fmt(b.max.rps / a.max.rps, 2)}× of (a)`);
    if (c !== undefined) parts.push(`${fmt(b.max.rps / c.max.rps, 2)}× of (c)`);
    const bp = b.fixed["500"]?.latencyMs.p99;
    if (a !== undefined && bp !== undefined && a.fixed["500"] !== undefined) parts.push(`p99@500 ${fmt(bp / a.fixed["500"].latencyMs.p99, 2)}× of (a)`);
    if (c !== undefined && bp !== undefined && c.fixed["500"] !== undefined) parts.push(`${fmt(bp / c.fixed["500"].latencyMs.p99, 2)}× of (c)`);
    const bc = cpuSum(b, ["mesh-out", "mesh-in"]);
    const cc = c === undefined ? undefined : cpuSum(c, ["ref-out", "ref-in"]);
    if (bc !== undefined && cc !== undefined) parts.push(`CPU/request ${fmt(bc / cc, 2)}× of (c)`);
    if (parts.length > 1) lines.push(`${parts[0]} ${parts.slice(1).join(", ")}`);
  }
  lines.push("");
  lines.push("Targets for (b), ratios from this run:");
  for (const t of report.targets) {
    lines.push(
      `  ${t.pass ? "PASS" : "FAIL"}  ${pad(t.target, 36)} ${pad(t.size === "all" ? "" : SIZE_LABEL[t.size], 7)} ` +
        `${fmt(t.value, 2)} (limit ${fmt(t.limit, 2)})  ${t.detail}`,
    );
  }
  return lines.join("\n");
}

function cpuSum(r: PathResult, procs: readonly string[]): number | undefined {
  let t = 0;
  for (const p of procs) {
    const v = r.processes[p]?.cpuPer10kAtMax;
    if (v === undefined) return undefined;
    t += v;
  }
  return t;
}
