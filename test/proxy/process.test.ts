// The proxy as the DaemonSet runs it: `node dist/main.js --config <file>`, a
// separate process on node b, reloading its config file and draining on SIGTERM.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { MeshFixture } from "../support/mesh";
import { httpGet } from "../support/net";
import { PROXY_MAIN, ProxyProcess, proxyArgv } from "../support/proxy-process";
import { waitFor as waitUntil } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";

let mesh: MeshFixture;
let dir: string;
let configPath: string;
let proc: ProxyProcess;
let config: ProxyConfig;

const waitFor = (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> =>
  waitUntil(what, check, { timeoutMs, detail: () => `; proxy output:\n${proc.output.slice(-3000)}` });

before(async () => {
  assert.ok(existsSync(PROXY_MAIN), `${PROXY_MAIN} is missing: run \`npm run build\` (npm test does)`);
  mesh = await MeshFixture.start();
  // Node b's proxy moves out of the test process into its own.
  await mesh.nodes.b.proxy.shutdown();
  dir = await mkdtemp(join(tmpdir(), "zt-mesh-proc-"));
  configPath = join(dir, "config.yaml");
  config = mesh.config(B, { log: { level: "info" } });
  await writeFile(configPath, stringify(config));
  proc = new ProxyProcess("b", B, mesh.ports.admin, configPath);
  await proc.start();
});

after(async () => {
  await proc?.kill();
  await mesh?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the proxy process", () => {
  it("serves the mesh path: Hello world through a separate proxy process", async () => {
    const r = await httpGet(A, mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } });
    assert.equal(r.body, "Hello world");
  });

  it("applies a changed config file without restarting", async () => {
    await writeFile(configPath, stringify({ ...config, incoming: { ...config.incoming, dtab: "/svc => /#/io.l5d.k8s/default/http; /svc/alias => /svc/world;" } }));
    await waitFor("the new dtab", async () => (await httpGet(B, mesh.ports.admin, "/admin/dtab")).body.includes("/svc/alias"));
    assert.match(proc.output, /"event":"config_reloaded"/);
  });

  it("logs a changed restart-required key by name, and keeps serving on the running value", async () => {
    await writeFile(configPath, stringify({ ...config, incoming: { ...config.incoming, port: config.incoming.port + 1 } }));
    await waitFor("the restart notice", async () => proc.output.includes("config_needs_restart"));
    assert.match(proc.output, /"event":"config_needs_restart".*"keys":"incoming\.port"/);
    assert.equal((await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world", "node b still listens where it did");
    await writeFile(configPath, stringify(config));
  });

  it("keeps the running config when the new file is invalid, and says which field", async () => {
    await writeFile(configPath, stringify({ ...config, limits: { ...config.limits, maxHops: 1 } }));
    await waitFor("the rejection", async () => proc.output.includes("config_reload_rejected"));
    assert.match(proc.output, /"event":"config_reload_rejected".*limits\.maxHops/);
    assert.equal((await httpGet(B, mesh.ports.admin, "/admin/ping")).body, "pong");
    assert.equal((await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world");
  });

  it("finishes requests in flight on SIGTERM, reports not ready meanwhile, then exits 0", async () => {
    const inFlight = httpGet(A, mesh.ports.outgoing, "http://world/slow?ms=1500", { headers: { host: "world" } });
    await new Promise((r) => setTimeout(r, 300));
    const exit = proc.stop();
    await waitFor("readiness to drop", async () => (await httpGet(B, mesh.ports.admin, "/admin/ready")).status === 503, 1000);
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body, "slow world");
    assert.equal(await exit, 0);
    assert.match(proc.output, /"event":"proxy_stopped"/);
    await assert.rejects(httpGet(B, mesh.ports.admin, "/admin/ping"), "nothing listens after exit");
  });
});

describe("starting with a bad config", () => {
  it("exits non-zero with a message naming the field", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "outgoing:\n  port: 99999\n");
    const child = spawn(process.execPath, proxyArgv(bad), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    assert.equal(code, 1);
    assert.match(out, /"event":"config_invalid".*outgoing\.port: Too big/);
  });
});
