// The proxy as the DaemonSet runs it: `node dist/main.js --config <file>`, a
// separate process on node b, reloading its config file and draining on SIGTERM.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { ProxyConfig } from "../../proxy/src/config/schema";
import { MeshFixture } from "../support/mesh";
import { httpGet } from "../support/net";

const MAIN = join(__dirname, "..", "..", "proxy", "dist", "main.js");
const A = "127.0.0.2";
const B = "127.0.0.3";

let mesh: MeshFixture;
let dir: string;
let configPath: string;
let proc: ChildProcess;
let output = "";
let exit: Promise<number | null>;
let config: ProxyConfig;

async function waitFor(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; proxy output:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  assert.ok(existsSync(MAIN), `${MAIN} is missing: run \`npm run build\` (npm test does)`);
  mesh = await MeshFixture.start();
  // Node b's proxy moves out of the test process into its own.
  await mesh.nodes.b.proxy.shutdown();
  dir = await mkdtemp(join(tmpdir(), "zt-mesh-proc-"));
  configPath = join(dir, "config.yaml");
  config = mesh.config("b", B, { log: { level: "info" } });
  await writeFile(configPath, stringify(config));
  proc = spawn(process.execPath, [MAIN, "--config", configPath], {
    env: { ...process.env, NODE_NAME: "b", HOST_IP: B },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  exit = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
  await waitFor("the proxy process to be ready", async () => (await httpGet(B, mesh.ports.admin, "/admin/ready")).status === 200);
});

after(async () => {
  if (proc.exitCode === null) proc.kill("SIGKILL");
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
    assert.match(output, /"event":"config_reloaded"/);
  });

  it("keeps the running config when the new file is invalid, and says which field", async () => {
    await writeFile(configPath, stringify({ ...config, limits: { ...config.limits, maxHops: 1 } }));
    await waitFor("the rejection", async () => output.includes("config_reload_rejected"));
    assert.match(output, /"event":"config_reload_rejected".*limits\.maxHops/);
    assert.equal((await httpGet(B, mesh.ports.admin, "/admin/ping")).body, "pong");
    assert.equal((await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world");
  });

  it("finishes requests in flight on SIGTERM, reports not ready meanwhile, then exits 0", async () => {
    const inFlight = httpGet(A, mesh.ports.outgoing, "http://world/slow?ms=1500", { headers: { host: "world" } });
    await new Promise((r) => setTimeout(r, 300));
    proc.kill("SIGTERM");
    await waitFor("readiness to drop", async () => (await httpGet(B, mesh.ports.admin, "/admin/ready")).status === 503, 1000);
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body, "slow world");
    assert.equal(await exit, 0);
    assert.match(output, /"event":"proxy_stopped"/);
    await assert.rejects(httpGet(B, mesh.ports.admin, "/admin/ping"), "nothing listens after exit");
  });
});

describe("starting with a bad config", () => {
  it("exits non-zero with a message naming the field", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "outgoing:\n  port: 99999\n");
    const child = spawn(process.execPath, [MAIN, "--config", bad], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    assert.equal(code, 1);
    assert.match(out, /"event":"config_invalid".*outgoing\.port: Too big/);
  });
});
