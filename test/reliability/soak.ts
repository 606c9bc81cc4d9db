// The long reliability run: `npm run soak [-- --minutes 10 --rate 100]`.
// Two proxy processes (node a on 127.0.0.2, node b on 127.0.0.3), the fake
// Kubernetes API and the world app on node b; an app on node a sends a fixed
// rate of requests (GETs, and every 10th a POST with a body) to world through
// both proxies. In the middle, the Kubernetes API is unreachable for a minute.
// Every few seconds it samples each proxy's RSS, descriptors and sockets, prints
// a table, writes everything to test-results/reliability/, and exits non-zero
// if a request failed or memory or descriptors grew past the stated bounds.
import { mkdir, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { type ProcSample, sample } from "../support/proc";
import { ProxyProcess } from "../support/proxy-process";
import { sleep } from "../support/wait";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "100" },
    "sample-seconds": { type: "string", default: "10" },
    "api-outage-seconds": { type: "string", default: "60" },
    "max-rss-growth-mib": { type: "string", default: "40" },
    "max-fd-growth": { type: "string", default: "4" },
    out: { type: "string", default: join(__dirname, "..", "..", "test-results", "reliability") },
  },
});
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
const SAMPLE_MS = Number(args["sample-seconds"]) * 1000;
const OUTAGE_MS = Number(args["api-outage-seconds"]) * 1000;
const MAX_RSS_GROWTH_MIB = Number(args["max-rss-growth-mib"]);
const MAX_FD_GROWTH = Number(args["max-fd-growth"]);
const MAX_OUTSTANDING = 2000;

const A = "127.0.0.2";
const B = "127.0.0.3";

interface Row {
  readonly t: number;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly api: "up" | "down";
  readonly a: ProcSample & { heapMiB: number };
  readonly b: ProcSample & { heapMiB: number };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function main(): Promise<number> {
  const durationMs = MINUTES * 60_000;
  // The outage sits in the middle third of the run, if the run is long enough.
  const outageAt = OUTAGE_MS > 0 && durationMs >= 3 * OUTAGE_MS ? Math.floor((durationMs - OUTAGE_MS) / 2) : -1;
  const mesh = await MeshFixture.start();
  const procs: ProxyProcess[] = [];
  try {
    for (const [node, ip] of [["a", A], ["b", B]] as const) {
      await mesh.nodes[node].proxy.shutdown();
      const path = join(mesh.tlsDir, "..", `config-${node}.yaml`);
      await ProxyProcess.write(path, mesh.config(ip, { log: { level: "info" } }));
      procs.push(new ProxyProcess(node, ip, mesh.ports.admin, path));
    }
    await Promise.all(procs.map((p) => p.start()));
    const [pa, pb] = procs as [ProxyProcess, ProxyProcess];

    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    let sent = 0;
    let outstanding = 0;
    let intervalLatencies: number[] = [];
    let intervalOk = 0;
    let intervalFailed = 0;
    let ok = 0;
    let failed = 0;
    let skipped = 0;
    const failures: string[] = [];
    const fire = (): void => {
      const n = ++sent;
      const post = n % 10 === 0;
      const body = post ? `soak ${n}` : undefined;
      const t0 = performance.now();
      outstanding++;
      const done = (status: number, why: string): void => {
        outstanding--;
        intervalLatencies.push(performance.now() - t0);
        if (status === 200) {
          ok++;
          intervalOk++;
        } else {
          failed++;
          intervalFailed++;
          if (failures.length < 50) failures.push(`${new Date().toISOString()} ${post ? "POST" : "GET"} ${status} ${why}`);
        }
      };
      const req = request(
        {
          host: A,
          port: mesh.ports.outgoing,
          path: post ? "http://world/echo" : "http://world/",
          method: post ? "POST" : "GET",
          agent,
          headers: { host: "world", ...(body === undefined ? {} : { "content-length": Buffer.byteLength(body) }) },
        },
        (res) => {
          let got = "";
          res.on("data", (c: Buffer) => (got += c.toString()));
          res.on("end", () => {
            const expected = body ?? "world";
            done(res.statusCode === 200 && got === expected ? 200 : (res.statusCode ?? 0) || 1, String(res.headers["l5d-err"] ?? got.slice(0, 80)));
          });
          res.on("error", (e) => done(0, e.message));
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error("client timeout after 30 s")));
      req.on("error", (e) => done(0, e.message));
      req.end(body);
    };

    const rows: Row[] = [];
    const started = Date.now();
    let apiDown = false;
    let outageDone = false;
    let nextSample = started + SAMPLE_MS;
    const header = "   t(s)   sent     ok failed  p50ms  p99ms  api | a rss MiB heap  fds socks | b rss MiB heap  fds socks";
    console.log(`soak: ${MINUTES} min at ${RATE} req/s through ${A} -> ${B}; API outage ${outageAt < 0 ? "none" : `${OUTAGE_MS / 1000} s from t=${outageAt / 1000} s`}`);
    console.log(header);
    const probe = async (p: ProxyProcess): Promise<ProcSample & { heapMiB: number }> => {
      const heap = await metric(p.ip, p.adminPort, "nodejs_heap_size_used_bytes").catch(() => NaN);
      return { ...sample(p.pid), heapMiB: round1(heap / 1048576) };
    };
    const record = async (): Promise<void> => {
      const sorted = intervalLatencies.sort((x, y) => x - y);
      const row: Row = {
        t: Math.round((Date.now() - started) / 1000),
        sent,
        ok: intervalOk,
        failed: intervalFailed,
        p50ms: Math.round(percentile(sorted, 0.5) * 10) / 10,
        p99ms: Math.round(percentile(sorted, 0.99) * 10) / 10,
        api: apiDown ? "down" : "up",
        a: await probe(pa),
        b: await probe(pb),
      };
      rows.push(row);
      intervalLatencies = [];
      intervalOk = 0;
      intervalFailed = 0;
      const f = (n: number, w: number): string => String(n).padStart(w);
      console.log(
        `${f(row.t, 7)} ${f(row.sent, 6)} ${f(row.ok, 6)} ${f(row.failed, 6)} ${f(row.p50ms, 6)} ${f(row.p99ms, 6)} ${row.api.padStart(4)} |` +
          ` ${f(row.a.rssMiB, 9)} ${f(row.a.heapMiB, 4)} ${f(row.a.fds, 4)} ${f(row.a.sockets, 5)} |` +
          ` ${f(row.b.rssMiB, 9)} ${f(row.b.heapMiB, 4)} ${f(row.b.fds, 4)} ${f(row.b.sockets, 5)}`,
      );
    };
    await record();

    while (Date.now() - started < durationMs) {
      const elapsed = Date.now() - started;
      if (outageAt >= 0 && !outageDone && !apiDown && elapsed >= outageAt) {
        apiDown = true;
        mesh.api.setDown(true);
      }
      if (apiDown && elapsed >= outageAt + OUTAGE_MS) {
        apiDown = false;
        outageDone = true;
        mesh.api.setDown(false);
      }
      const due = Math.floor((elapsed / 1000) * RATE);
      while (sent + skipped < due) {
        if (outstanding >= MAX_OUTSTANDING) skipped++;
        else fire();
      }
      if (Date.now() >= nextSample) {
        await record();
        nextSample += SAMPLE_MS;
      }
      await sleep(5);
    }
    const drainDeadline = Date.now() + 35_000;
    while (outstanding > 0 && Date.now() < drainDeadline) await sleep(20);
    if (apiDown) mesh.api.setDown(false);
    // Idle a moment so connections the run no longer needs may close, then the last sample.
    agent.destroy();
    await sleep(2000);
    await record();

    // V8 grows its heap for the first minutes; growth is measured from the end of
    // the first third of the run (at least a minute in), where a leak would show.
    const warm = rows.find((r) => r.t >= Math.max(60, durationMs / 3000)) ?? rows[Math.floor(rows.length / 3)]!;
    const last = rows[rows.length - 1]!;
    const growth = {
      a: { rssMiB: round1(last.a.rssMiB - warm.a.rssMiB), heapMiB: round1(last.a.heapMiB - warm.a.heapMiB), fds: last.a.fds - warm.a.fds, sockets: last.a.sockets - warm.a.sockets },
      b: { rssMiB: round1(last.b.rssMiB - warm.b.rssMiB), heapMiB: round1(last.b.heapMiB - warm.b.heapMiB), fds: last.b.fds - warm.b.fds, sockets: last.b.sockets - warm.b.sockets },
    };
    const peak = {
      a: Math.max(...rows.map((r) => r.a.rssMiB)),
      b: Math.max(...rows.map((r) => r.b.rssMiB)),
    };
    const problems: string[] = [];
    if (failed > 0) problems.push(`${failed} requests failed`);
    if (outstanding > 0) problems.push(`${outstanding} requests never finished`);
    if (skipped > 0) problems.push(`${skipped} requests could not be sent (generator overloaded)`);
    for (const node of ["a", "b"] as const) {
      if (growth[node].rssMiB > MAX_RSS_GROWTH_MIB) problems.push(`proxy ${node} RSS grew ${growth[node].rssMiB} MiB (bound ${MAX_RSS_GROWTH_MIB})`);
      if (growth[node].fds > MAX_FD_GROWTH) problems.push(`proxy ${node} descriptors grew by ${growth[node].fds} (bound ${MAX_FD_GROWTH})`);
    }
    const summary = {
      minutes: MINUTES,
      rate: RATE,
      apiOutage: outageAt < 0 ? null : { fromS: outageAt / 1000, seconds: OUTAGE_MS / 1000 },
      sent,
      ok,
      failed,
      skipped,
      warmAtS: warm.t,
      start: { a: warm.a, b: warm.b },
      end: { a: last.a, b: last.b },
      growth,
      peakRssMiB: peak,
      bounds: { maxRssGrowthMiB: MAX_RSS_GROWTH_MIB, maxFdGrowth: MAX_FD_GROWTH },
      problems,
      failures,
      node: process.version,
      finishedAt: new Date().toISOString(),
    };
    await mkdir(args.out!, { recursive: true });
    const file = join(args.out!, `soak-${summary.finishedAt.replace(/[:.]/g, "-")}.json`);
    await writeFile(file, JSON.stringify({ summary, rows }, null, 2) + "\n");
    console.log(
      `\nsent ${sent}, ok ${ok}, failed ${failed}; from t=${warm.t}s to the end: ` +
        `a RSS ${warm.a.rssMiB} -> ${last.a.rssMiB} MiB, fds ${warm.a.fds} -> ${last.a.fds}; ` +
        `b RSS ${warm.b.rssMiB} -> ${last.b.rssMiB} MiB, fds ${warm.b.fds} -> ${last.b.fds}; peak RSS a ${peak.a} b ${peak.b} MiB`,
    );
    for (const f of failures.slice(0, 10)) console.log(`  failed: ${f}`);
    console.log(`figures written to ${file}`);
    if (problems.length > 0) {
      console.log(`SOAK FAILED: ${problems.join("; ")}`);
      return 1;
    }
    console.log("soak passed");
    return 0;
  } finally {
    await Promise.all(procs.map((p) => p.stop().catch(() => undefined)));
    await mesh.close();
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
