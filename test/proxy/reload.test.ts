// The reload contract: a reloaded config changes every live key at once
// (ejection, retries, timeouts), and a restart-required key keeps its running
// value and is reported by name.
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { parseConfig } from "@zt-mesh/proxy-config";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { freePort, httpGet } from "../support/net";
import { waitFor } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";

let mesh: MeshFixture;
/** An app on node b that drops every connection it is handed, as a crashing pod does. */
let hangUp: Server;

before(async () => {
  mesh = await MeshFixture.start();
  const hangUpPort = await freePort([B]);
  hangUp = createServer((req) => req.socket.destroy());
  await new Promise<void>((r) => hangUp.listen(hangUpPort, B, r));
  // Nothing listens on deadPort: a connection to it is refused, so node b
  // refuses the stream and node a may try the other endpoint.
  const deadPort = await freePort([B]);
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "crashing", [{ name: "http", port: hangUpPort }], [{ ip: B, node: "b" }]));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "half", [{ name: "http", port: mesh.ports.world }], [{ ip: B, node: "b" }], "half-up"));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "half", [{ name: "http", port: deadPort }], [{ ip: B, node: "b" }], "half-down"));
  for (const name of ["crashing", "half"]) {
    await waitFor(`${name} to be routable`, async () => !(await viaA(`http://${name}/`)).headers["l5d-err"]?.includes("not found"));
  }
});

after(async () => {
  hangUp?.close();
  await mesh?.close();
});

const viaA = (url: string) => httpGet(A, mesh.ports.outgoing, url, { localAddress: A, headers: { host: new URL(url).host } });

/** The node's running config with `change` applied on top, section by section. */
function reloaded(node: "a" | "b", change: (c: ProxyConfig) => Partial<ProxyConfig>): ProxyConfig {
  const base = mesh.config(mesh.nodes[node].ip);
  return parseConfig({ ...base, ...change(base) });
}

async function withReload<T>(node: "a" | "b", config: ProxyConfig, fn: (restartPending: readonly string[]) => Promise<T>): Promise<T> {
  const proxy = mesh.nodes[node].proxy;
  const pending = proxy.applyConfig(config);
  try {
    return await fn(pending);
  } finally {
    proxy.applyConfig(mesh.config(mesh.nodes[node].ip));
  }
}

describe("reloading live keys", () => {
  it("ejection.*: a lower consecutiveFailures ejects on the next failure", async () => {
    const ejections = () => metric(B, mesh.ports.admin, "mesh_ejections_total");
    const before = await ejections();
    assert.equal((await viaA("http://crashing/")).status, 502);
    assert.equal(await ejections(), before, "one failure is under the default of 5");

    await withReload("b", reloaded("b", (c) => ({ ejection: { ...c.ejection, consecutiveFailures: 1 } })), async (pending) => {
      assert.deepEqual(pending, []);
      assert.equal((await viaA("http://crashing/")).status, 502);
      assert.equal(await ejections(), before + 1, "ejected at the reloaded threshold");
    });
  });

  it("retries.*: a budget reloaded to nothing stops the retries the default allowed", async () => {
    // Keep the refusing endpoint in rotation: ejection would hide it after a few failures.
    const keepTrying = (c: ProxyConfig): Partial<ProxyConfig> => ({ ejection: { ...c.ejection, consecutiveFailures: 1000 } });
    const retries = () => metric(A, mesh.ports.admin, "mesh_retries_total");
    const exhausted = () => metric(A, mesh.ports.admin, "mesh_retry_budget_exhausted_total");

    await withReload("a", reloaded("a", keepTrying), async () => {
      const before = await retries();
      const statuses = (await sequence(20, () => viaA("http://half/"))).map((r) => r.status);
      assert.deepEqual(new Set(statuses), new Set([200]), "every refused attempt was retried on the live endpoint");
      assert.ok((await retries()) > before, "retries were made");
    });

    const noBudget = reloaded("a", (c) => ({ ...keepTrying(c), retries: { budgetPercent: 0, minRetriesPerSecond: 0, ttlMs: 1000 } }));
    await withReload("a", noBudget, async () => {
      const [retriesBefore, exhaustedBefore] = [await retries(), await exhausted()];
      const statuses = (await sequence(20, () => viaA("http://half/"))).map((r) => r.status);
      assert.ok(statuses.includes(502), `some requests met the refusing endpoint first and were not retried: ${statuses.join(",")}`);
      assert.equal(await retries(), retriesBefore, "no retry was made");
      assert.ok((await exhausted()) > exhaustedBefore, "the empty budget was counted");
    });
  });

  it("limits.requestTimeoutMs: a shorter timeout answers 504 at once", async () => {
    assert.equal((await viaA("http://world/slow?ms=600")).status, 200);
    await withReload("a", reloaded("a", (c) => ({ limits: { ...c.limits, requestTimeoutMs: 200 } })), async (pending) => {
      assert.deepEqual(pending, []);
      const r = await viaA("http://world/slow?ms=600");
      assert.equal(r.status, 504);
      assert.match(String(r.headers["l5d-err"]), /^timeout after 200 ms/);
    });
  });
});

describe("reloading a restart-required key", () => {
  it("keeps the running value, and reports the key by name and in a metric", async () => {
    const pendingMetric = () => metric(A, mesh.ports.admin, "mesh_config_restart_pending", { key: "limits.maxHeaderBytes" });
    const smaller = reloaded("a", (c) => ({ limits: { ...c.limits, maxHeaderBytes: 2048 } }));
    await withReload("a", smaller, async (pending) => {
      assert.deepEqual(pending, ["limits.maxHeaderBytes"]);
      assert.equal(await pendingMetric(), 1);
      // A 4 KiB header is over the file's 2 KiB but within the running 16 KiB.
      const r = await httpGet(A, mesh.ports.outgoing, "http://world/", {
        localAddress: A,
        headers: { host: "world", "x-big": "x".repeat(4096) },
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, "world");
    });
    assert.equal(await pendingMetric(), 0, "cleared once the file agrees with the running value again");
  });
});

async function sequence<T>(n: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}
