// `npm run bench`: what the mesh costs per request, measured in one run beside
// (a) a direct connection to the backend (the floor) and (c) nginx doing the
// same two-hop mutual-TLS job with the same certificates.
//
//   node --import tsx bench/run.ts [--quick] [--profile] [--sizes 0,1k,64k] [--paths direct,mesh,reference]
//        [--out DIR] [--keep] [--fail-on-targets] [--write-docs] [--proxy-node-args="--max-old-space-size=64"]
//
// --write-docs puts the figures table into docs/performance.md (between its
// generated markers); it needs every path and size, and no --profile.
//
// Exit status: 0 when every measurement completed without failed requests (targets
// missed or not), 1 on failed requests or a broken set-up, 2 with --fail-on-targets
// when a target was missed, 3 when the overall time limit ran out.
//
// Everything runs on loopback: node a is 127.0.0.2, node b 127.0.0.3. The
// backend (nginx serving static bodies) sits on node b and is the same for all
// three paths. Every process started here is stopped at the end, on error, on
// Ctrl-C, and when the overall time limit runs out.
import { execFileSync, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort, httpGet } from "../test/support/net";
import { TestPki } from "../test/support/pki";
import { renderChart } from "./chart";
import { PERFORMANCE_DOC, writeDocsSection } from "./docs-table";
import { killAllSync } from "./children";
import { type Target, runOha, runWrk, writeWrkScript } from "./loadgen";
import { BenchMesh, SERVICE } from "./mesh-procs";
import { type NginxInstance, backendConfig, nginxAccepts, refInConfig, refOutConfig, startNginx, stopNginx } from "./nginx";
import { type GroupUsage, type ProcessGroup, UsageWindow } from "./procstat";
import { summarizeProfiles } from "./profile-summary";
import {
  type BenchReport,
  type FixedRate,
  type HandshakeFigures,
  type Machine,
  PATHS,
  PATH_LABEL,
  type PathName,
  type PathResult,
  type ProcessFigures,
  RATES,
  SIZES,
  SIZE_BYTES,
  SIZE_LABEL,
  type SizeName,
  checkTargets,
  fmt,
  renderTable,
} from "./results";

const IDENTITY = "mesh.test.local";
const NODE_A = "127.0.0.2";
const NODE_B = "127.0.0.3";
const HERE = __dirname;
const REPO = resolve(HERE, "..");

interface Settings {
  readonly warmupS: number;
  readonly maxS: number;
  readonly rateS: Record<number, number>;
  readonly wrkConnections: number;
  readonly wrkThreads: number;
  readonly ohaConnections: number;
  readonly timeLimitS: number;
}

const FULL: Settings = {
  warmupS: 3,
  maxS: 10,
  rateS: { 500: 20, 2000: 15 },
  wrkConnections: 32,
  wrkThreads: 1,
  ohaConnections: 32,
  timeLimitS: 30 * 60,
};
const QUICK: Settings = {
  warmupS: 1,
  maxS: 2,
  rateS: { 500: 2, 2000: 2 },
  wrkConnections: 32,
  wrkThreads: 1,
  ohaConnections: 32,
  timeLimitS: 6 * 60,
};

interface Tools {
  readonly wrk: string;
  readonly oha: string;
  readonly nginx: string;
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/**
 * Installs or finds wrk, nginx and oha (bench/build-tools.sh), unless
 * BENCH_WRK, BENCH_OHA and BENCH_NGINX are set. (Not NGINX: nginx itself reads
 * that variable, as a list of inherited sockets.)
 */
function locateTools(): Tools {
  const env = process.env;
  if (env.BENCH_WRK && env.BENCH_OHA && env.BENCH_NGINX) return { wrk: env.BENCH_WRK, oha: env.BENCH_OHA, nginx: env.BENCH_NGINX };
  const out = execFileSync("bash", [join(HERE, "build-tools.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const vars = Object.fromEntries(out.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
  if (!vars.BENCH_WRK || !vars.BENCH_OHA || !vars.BENCH_NGINX) throw new Error(`build-tools.sh printed no tool paths: ${out}`);
  return { wrk: vars.BENCH_WRK, oha: vars.BENCH_OHA, nginx: vars.BENCH_NGINX };
}

/** First line a tool prints about its version (nginx -v and wrk -v print to stderr; wrk exits 1). */
function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n")[0]!.trim();
}

interface Rig {
  readonly dir: string;
  readonly tools: Tools;
  readonly settings: Settings;
  readonly wrkScript: string;
  readonly targets: Record<PathName, Target>;
  readonly groups: Record<PathName, ProcessGroup[]>;
  readonly handshakes: Record<Exclude<PathName, "direct">, () => Promise<{ count: number; detail: string }>>;
}

async function measure(rig: Rig, path: PathName, size: SizeName): Promise<PathResult> {
  const { settings, tools } = rig;
  const target = { ...rig.targets[path], url: `${rig.targets[path].url}/${size}` };
  const groups = rig.groups[path];
  log(`${SIZE_LABEL[size]} ${PATH_LABEL[path]}: warm-up ${settings.warmupS}s`);
  const peak = new UsageWindow(groups, 100);
  await runWrk(tools.wrk, rig.wrkScript, target, { connections: settings.wrkConnections, threads: settings.wrkThreads, durationS: settings.warmupS });

  const hsBefore = path === "direct" ? undefined : await rig.handshakes[path]();
  const w = new UsageWindow(groups, 0);
  const max = await runWrk(tools.wrk, rig.wrkScript, target, {
    connections: settings.wrkConnections,
    threads: settings.wrkThreads,
    durationS: settings.maxS,
  });
  const atMax = w.stop();
  log(`  max ${fmt(max.rps, 0)} req/s (${max.errors} errors)`);

  const fixed: Record<string, FixedRate> = {};
  let atRate2000: Record<string, GroupUsage> | undefined;
  for (const rate of RATES) {
    await new Promise((r) => setTimeout(r, 500));
    const wr = new UsageWindow(groups, 0);
    const f = await runOha(tools.oha, target, { rate, connections: settings.ohaConnections, durationS: settings.rateS[rate]! });
    const usage = wr.stop();
    if (rate === 2000) atRate2000 = usage;
    fixed[String(rate)] = f;
    log(
      `  @${rate}/s: achieved ${fmt(f.achievedRps, 0)}/s, p50 ${fmt(f.latencyMs.p50, 3)} p99 ${fmt(f.latencyMs.p99, 3)} p99.9 ${fmt(f.latencyMs.p999, 3)} ms (${f.errors} errors)`,
    );
  }
  const peakUsage = peak.stop();

  let tlsHandshakes: HandshakeFigures | null = null;
  if (path !== "direct" && hsBefore !== undefined) {
    const hsAfter = await rig.handshakes[path]();
    const requests = max.requests + Object.values(fixed).reduce((t, f) => t + f.requests, 0);
    const handshakes = hsAfter.count - hsBefore.count;
    tlsHandshakes = { method: hsAfter.detail, handshakes, requests, per10k: (handshakes / requests) * 10_000 };
    log(`  TLS handshakes after warm-up: ${handshakes} in ${requests} requests`);
  }

  const processes: Record<string, ProcessFigures> = {};
  for (const g of groups) {
    const m = atMax[g.name]!;
    const r = atRate2000?.[g.name];
    const f2000 = fixed["2000"];
    processes[g.name] = {
      cpuPer10kAtMax: (m.cpuSeconds / max.requests) * 10_000,
      cpuPer10kAt2000: r === undefined || f2000 === undefined ? null : (r.cpuSeconds / f2000.requests) * 10_000,
      peakRssMiB: peakUsage[g.name]!.peakRssBytes / (1024 * 1024),
    };
  }
  return { path, size, max, fixed, processes, tlsHandshakes };
}

async function checkPath(target: Target, size: SizeName, label: string): Promise<void> {
  const r = await httpGet(new URL(target.url).hostname, Number(new URL(target.url).port), `/${size}`, {
    headers: { host: target.host },
    timeoutMs: 5000,
  });
  if (r.status !== 200 || Buffer.byteLength(r.body) !== SIZE_BYTES[size]) {
    throw new Error(`${label} /${size}: expected 200 with ${SIZE_BYTES[size]} bytes, got ${r.status} with ${Buffer.byteLength(r.body)}: ${r.body.slice(0, 200)}`);
  }
}

function listArg<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (value === undefined) return [...all];
  const items = value.split(",").map((s) => s.trim()) as T[];
  for (const i of items) if (!all.includes(i)) throw new Error(`unknown ${what} ${i}; choose from ${all.join(", ")}`);
  return all.filter((a) => items.includes(a));
}

interface Options {
  readonly settings: Settings;
  readonly quick: boolean;
  readonly sizes: SizeName[];
  readonly paths: PathName[];
  readonly outDir: string;
  readonly keep: boolean;
  readonly profile: boolean;
  readonly proxyNodeArgs: string[];
  readonly failOnTargets: boolean;
  readonly writeDocs: boolean;
}

function parseOptions(): Options {
  const { values: args } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      sizes: { type: "string" },
      paths: { type: "string" },
      out: { type: "string", default: join(HERE, "results") },
      keep: { type: "boolean", default: false },
      "proxy-node-args": { type: "string" },
      "fail-on-targets": { type: "boolean", default: false },
      "write-docs": { type: "boolean", default: false },
    },
    strict: true,
  });
  const writeDocs = args["write-docs"] === true;
  if (writeDocs && (args.sizes !== undefined || args.paths !== undefined || args.profile === true)) {
    throw new Error("--write-docs documents every path and size unprofiled: drop --sizes, --paths and --profile");
  }
  return {
    settings: args.quick === true ? QUICK : FULL,
    quick: args.quick === true,
    sizes: listArg(args.sizes, SIZES, "size"),
    paths: listArg(args.paths, PATHS, "path"),
    outDir: resolve(args.out ?? join(HERE, "results")),
    keep: args.keep === true,
    profile: args.profile === true,
    // Extra node flags for the proxy processes (a --require preload, heap sizes).
    proxyNodeArgs: args["proxy-node-args"]?.split(/\s+/).filter((a) => a !== "") ?? [],
    failOnTargets: args["fail-on-targets"] === true,
    writeDocs,
  };
}

interface Started {
  readonly rig: Rig;
  /** Proxy pids by name, to label CPU profiles. */
  readonly labels: ReadonlyMap<number, string>;
}

/**
 * Certificates, bodies, the backend and the proxies of the chosen paths. Each
 * thing started pushes its stop onto `stops`, so a failure halfway is undone.
 */
async function startRig(opts: Options, tools: Tools, dir: string, pki: TestPki, stops: (() => Promise<void>)[], nodeArgs: string[]): Promise<Started> {
  // One CA, one mesh certificate carrying the identity, used by both chains.
  const ca = await pki.ca("mesh-ca");
  const leaf = await pki.leaf(ca, { dns: [IDENTITY] });
  const tlsDir = join(dir, "tls");
  await mkdir(tlsDir);
  const tls = { ca: join(tlsDir, "ca.crt"), cert: join(tlsDir, "tls.crt"), key: join(tlsDir, "tls.key"), identity: IDENTITY };
  await writeFile(tls.ca, ca.cert);
  await writeFile(tls.cert, leaf.cert);
  await writeFile(tls.key, leaf.key, { mode: 0o600 });

  const www = join(dir, "www");
  await mkdir(www);
  for (const s of SIZES) await writeFile(join(www, s), Buffer.alloc(SIZE_BYTES[s], "x"));

  const both = [NODE_A, NODE_B];
  const ports = {
    backend: await freePort(both),
    meshOut: await freePort(both),
    meshIn: await freePort(both),
    meshAdmin: await freePort(both),
    refOut: await freePort(both),
    refIn: await freePort(both),
    refStatus: await freePort(both),
  };

  const backend = await startNginx(tools.nginx, dir, "backend", backendConfig(dir, NODE_B, ports.backend, www), { ip: NODE_B, port: ports.backend });
  stops.push(() => stopNginx(backend));

  let mesh: BenchMesh | undefined;
  if (opts.paths.includes("mesh")) {
    const m = await BenchMesh.start({
      dir,
      ports: { outgoing: ports.meshOut, incoming: ports.meshIn, admin: ports.meshAdmin },
      backend: { ip: NODE_B, node: "b", port: ports.backend },
      tls,
      nodeArgs,
    });
    mesh = m;
    stops.push(() => m.close());
  }
  let refOut: NginxInstance | undefined;
  let refIn: NginxInstance | undefined;
  if (opts.paths.includes("reference")) {
    const ri = await startNginx(
      tools.nginx,
      dir,
      "ref-in",
      refInConfig(dir, NODE_B, ports.refIn, ports.refStatus, `${NODE_B}:${ports.backend}`, tls),
      { ip: NODE_B, port: ports.refIn },
      { host: NODE_B, port: ports.refStatus, path: "/status" },
    );
    refIn = ri;
    stops.push(() => stopNginx(ri));
    const ro = await startNginx(tools.nginx, dir, "ref-out", refOutConfig(dir, NODE_A, ports.refOut, `${NODE_B}:${ports.refIn}`, tls), {
      ip: NODE_A,
      port: ports.refOut,
    });
    refOut = ro;
    stops.push(() => stopNginx(ro));
  }

  const fixedGroup = (name: string, pids: readonly number[]): ProcessGroup => ({ name, pids: () => [...pids] });
  const backendGroup = fixedGroup("backend", backend.pids);
  const meshOut = mesh?.procs.find((p) => p.name === "mesh-out");
  const meshIn = mesh?.procs.find((p) => p.name === "mesh-in");
  const labels = new Map<number, string>();
  for (const p of [meshOut, meshIn]) if (p !== undefined) labels.set(p.started.pid, p.name);
  let statusReads = 0;
  const rig: Rig = {
    dir,
    tools,
    settings: opts.settings,
    wrkScript: await writeWrkScript(dir),
    targets: {
      direct: { url: `http://${NODE_B}:${ports.backend}`, host: SERVICE },
      mesh: { url: `http://${NODE_A}:${ports.meshOut}`, host: SERVICE },
      reference: { url: `http://${NODE_A}:${ports.refOut}`, host: SERVICE },
    },
    groups: {
      direct: [backendGroup],
      mesh: meshOut && meshIn ? [fixedGroup("mesh-out", [meshOut.started.pid]), fixedGroup("mesh-in", [meshIn.started.pid]), backendGroup] : [],
      reference: refOut && refIn ? [fixedGroup("ref-out", refOut.pids), fixedGroup("ref-in", refIn.pids), backendGroup] : [],
    },
    handshakes: {
      mesh: async () => {
        const client = await mesh!.metric(meshOut!, "mesh_tls_handshakes_total", { side: "client" });
        const server = await mesh!.metric(meshIn!, "mesh_tls_handshakes_total", { side: "server" });
        return {
          count: Math.max(client, server),
          detail: "mesh_tls_handshakes_total: side=client on the outgoing proxy and side=server on the incoming proxy (the larger difference)",
        };
      },
      reference: async () => {
        // Each status read is itself one accepted connection: see nginxAccepts.
        const accepts = await nginxAccepts(refIn!);
        statusReads++;
        return {
          count: accepts - statusReads,
          detail: "connections accepted by the incoming nginx (stub_status 'accepts', less the status requests); each TLS connection is one handshake, full or resumed",
        };
      },
    },
  };
  return { rig, labels };
}

function describeMachine(tools: Tools, loadStart: number[]): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.versions.node,
    tools: {
      wrk: versionOf(tools.wrk, ["-v"]),
      oha: versionOf(tools.oha, ["--version"]),
      nginx: versionOf(tools.nginx, ["-v"]),
    },
    loadAverageStart: loadStart,
    loadAverageEnd: loadavg(),
  };
}

/** Terminal table, then latest.json / .svg / .txt (quick.* for --quick). */
async function writeOutputs(opts: Options, report: BenchReport): Promise<void> {
  const { machine: m } = report;
  const table = renderTable(report);
  process.stdout.write(`\n${table}\n\n`);
  process.stdout.write(
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; ` +
      `load average ${m.loadAverageStart.map((x) => x.toFixed(2)).join(" ")} at start, ${m.loadAverageEnd.map((x) => x.toFixed(2)).join(" ")} at end\n`,
  );
  const base = opts.quick ? "quick" : "latest";
  await writeFile(join(opts.outDir, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(opts.outDir, `${base}.svg`), renderChart(report));
  await writeFile(join(opts.outDir, `${base}.txt`), `${table}\n`);
  log(`wrote ${join(opts.outDir, `${base}.json`)}, ${base}.svg and ${base}.txt`);
}

async function writeProfileSummary(profileDir: string, labels: ReadonlyMap<number, string>): Promise<void> {
  const files = (await readdir(profileDir)).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(profileDir, f));
  const summary = await summarizeProfiles(files, 30, labels);
  await writeFile(join(profileDir, "summary.txt"), summary);
  process.stdout.write(`\n${summary}\n`);
  log(`profiles and summary in ${profileDir}`);
}

async function main(): Promise<number> {
  const opts = parseOptions();
  if (Number(process.versions.node.split(".")[0]) < 24) {
    throw new Error(`Node ${process.versions.node}: the proxy needs Node 24 (use npm run bench, or node_modules/.bin/node)`);
  }
  const { settings } = opts;
  await mkdir(opts.outDir, { recursive: true });

  // Installing or building the tools (first run only) is not counted in the time limit.
  const tools = locateTools();
  const startedAt = new Date().toISOString();
  const loadStart = loadavg();
  log(`load average at start: ${loadStart.map((x) => x.toFixed(2)).join(" ")}`);

  const dir = await mkdtemp(join(tmpdir(), "zt-mesh-bench-"));
  const pki = await TestPki.create();
  const stops: (() => Promise<void>)[] = [];
  /** For the abrupt ways out (signal, time limit): kill everything, remove the temporary files. */
  const abandon = (code: number): never => {
    killAllSync();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    rmSync(pki.dir, { recursive: true, force: true });
    process.exit(code);
  };
  const deadline = setTimeout(() => {
    log(`time limit of ${settings.timeLimitS} s reached: stopping everything`);
    abandon(3);
  }, settings.timeLimitS * 1000);
  const onSignal = (sig: string): void => {
    log(`${sig}: stopping`);
    abandon(130);
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("exit", killAllSync);

  try {
    const nodeArgs = [...opts.proxyNodeArgs];
    let profileDir: string | undefined;
    if (opts.profile) {
      profileDir = join(opts.outDir, "profiles", startedAt.replace(/[:.]/g, "-"));
      await mkdir(profileDir, { recursive: true });
      nodeArgs.push("--cpu-prof", "--cpu-prof-dir", profileDir);
    }
    const { rig, labels } = await startRig(opts, tools, dir, pki, stops, nodeArgs);

    for (const path of opts.paths) for (const size of opts.sizes) await checkPath(rig.targets[path], size, PATH_LABEL[path]);
    log("all paths answer with the expected bodies");

    const results: PathResult[] = [];
    for (const size of opts.sizes) for (const path of opts.paths) results.push(await measure(rig, path, size));

    // Stopped before the report: --cpu-prof writes its profile when a proxy exits.
    for (const stopOne of stops.reverse()) await stopOne();
    stops.length = 0;

    const report: BenchReport = {
      schema: "zt-mesh-bench/1",
      startedAt,
      finishedAt: new Date().toISOString(),
      quick: opts.quick,
      machine: describeMachine(tools, loadStart),
      settings: {
        ...settings,
        backend: "nginx (1 worker) serving static files on node b",
        proxies: "zt-mesh: one Node process each; nginx: master + 1 worker each",
        profiled: opts.profile,
        proxyNodeArgs: opts.proxyNodeArgs,
        proxyMain: process.env.BENCH_PROXY_MAIN ?? "proxy/dist/main.js",
        freeMemoryGiBAtEnd: Math.round((freemem() / 2 ** 30) * 10) / 10,
      },
      results,
      targets: checkTargets(results),
    };
    await writeOutputs(opts, report);
    if (profileDir !== undefined) await writeProfileSummary(profileDir, labels);

    const errors = results.reduce((t, r) => t + r.max.errors + Object.values(r.fixed).reduce((u, f) => u + f.errors, 0), 0);
    if (errors > 0) {
      log(`${errors} requests failed during the measurements: the figures are not trustworthy${opts.writeDocs ? `, ${PERFORMANCE_DOC} left as it was` : ""}`);
      return 1;
    }
    if (opts.writeDocs) {
      writeDocsSection(REPO, report);
      log(`wrote the figures into ${PERFORMANCE_DOC}`);
    }
    if (opts.failOnTargets && report.targets.some((t) => !t.pass)) {
      log("some targets were missed (--fail-on-targets)");
      return 2;
    }
    return 0;
  } finally {
    for (const stopOne of stops.reverse()) await stopOne().catch((e: unknown) => log(`stop failed: ${String(e)}`));
    await pki.cleanup();
    if (opts.keep) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
    clearTimeout(deadline);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAllSync();
    process.exit(1);
  },
);
