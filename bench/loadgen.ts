// The load generators, run as separate processes (they are not the system
// under test): wrk for maximum throughput over keep-alive connections, oha for
// fixed request rates with latency measured from each request's scheduled start
// (correction for coordinated omission).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "./children";
import type { FixedRate, MaxThroughput } from "./results";

export interface Target {
  /** e.g. http://127.0.0.2:4140/1k */
  readonly url: string;
  /** The Host header every request carries (the mesh routes on it). */
  readonly host: string;
}

const WRK_SCRIPT = `
-- Prints wrk's summary as one JSON line, so nothing is scraped from its text.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

export async function writeWrkScript(dir: string): Promise<string> {
  const path = join(dir, "summary.lua");
  await writeFile(path, WRK_SCRIPT);
  return path;
}

export async function runWrk(
  wrk: string,
  script: string,
  target: Target,
  opts: { connections: number; threads: number; durationS: number },
): Promise<MaxThroughput> {
  const args = [
    `-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.durationS}s`, "--timeout", "5s",
    "-H", `Host: ${target.host}`, "-s", script, target.url,
  ];
  const r = await runTool(wrk, args, (opts.durationS + 30) * 1000);
  const line = r.stdout.split("\n").find((l) => l.startsWith("WRK-JSON "));
  if (r.code !== 0 || line === undefined) {
    throw new Error(`wrk ${args.join(" ")} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  const j = JSON.parse(line.slice("WRK-JSON ".length)) as Record<string, number>;
  const durationS = j.duration_us! / 1e6;
  return {
    tool: "wrk",
    connections: opts.connections,
    durationS,
    requests: j.requests!,
    rps: j.requests! / durationS,
    errors: j.connect! + j.read! + j.write! + j.status! + j.timeout!,
    latencyMs: { p50: j.p50_us! / 1000, p99: j.p99_us! / 1000 },
  };
}

interface OhaJson {
  summary: { successRate: number; total: number; requestsPerSec: number; slowest: number | null };
  latencyPercentiles: Record<string, number | null>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

export async function runOha(
  oha: string,
  target: Target,
  opts: { rate: number; connections: number; durationS: number },
): Promise<FixedRate> {
  const args = [
    "--no-tui", "--output-format", "json",
    // -w: requests in flight at the deadline finish and count, instead of being
    // aborted and reported as errors.
    "-z", `${opts.durationS}s`, "-w", "-q", String(opts.rate), "--latency-correction",
    "-c", String(opts.connections), "-t", "5s", "--worker-threads", "1",
    "--host", target.host, target.url,
  ];
  const r = await runTool(oha, args, (opts.durationS + 30) * 1000);
  if (r.code !== 0) throw new Error(`oha ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  let j: OhaJson;
  try {
    j = JSON.parse(r.stdout) as OhaJson;
  } catch {
    throw new Error(`oha printed no JSON: ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
  }
  let ok = 0;
  let bad = 0;
  for (const [code, n] of Object.entries(j.statusCodeDistribution)) {
    if (Number(code) >= 200 && Number(code) < 400) ok += n;
    else bad += n;
  }
  const errors = bad + Object.values(j.errorDistribution).reduce((t, n) => t + n, 0);
  const pct = (k: string): number => (j.latencyPercentiles[k] ?? Number.NaN) * 1000;
  return {
    tool: "oha",
    targetRps: opts.rate,
    connections: opts.connections,
    durationS: j.summary.total,
    requests: ok + bad,
    achievedRps: (ok + bad) / j.summary.total,
    errors,
    latencyMs: { p50: pct("p50"), p99: pct("p99"), p999: pct("p99.9"), max: (j.summary.slowest ?? Number.NaN) * 1000 },
  };
}
