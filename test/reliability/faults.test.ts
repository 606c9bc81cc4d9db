// Faults under load, with both proxies as their own processes (as the
// DaemonSet runs them): the service "ledger" has one endpoint on each node, an
// app on node a sends GETs and POSTs to it through node a's proxy, and each
// test breaks something on node b's side while the load runs. Measured for
// each: requests failed (by method), time to recover, and each proxy's
// descriptors and sockets before and after. The ledger backends record every
// request id, so a POST that reached an app twice would show.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ProxyConfigInput } from "@zt-mesh/proxy-config";
import { ENDPOINTSLICES, PODS, endpointSlice, meshPod } from "../support/fake-kube-api";
import { MESH_LABELS, MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { freePort } from "../support/net";
import { fdCount, socketCount } from "../support/proc";
import { ProxyProcess } from "../support/proxy-process";
import { sleep, waitFor } from "../support/wait";
import { LedgerBackend, LinkRelay, Load, type Outcome, describeFailures } from "./support";

const A = "127.0.0.2";
const B = "127.0.0.3";
/** Node b's address as node a sees it during the link test: a relay we can cut. */
const B_LINK = "127.0.0.5";
const CONCURRENCY = 8;
/** Descriptors a proxy may hold above its count before a test (a new peer session, a pooled app connection); a leak grows with the failures, by hundreds here. */
const SLACK = 4;
const EXTRA: ProxyConfigInput = {
  limits: { connectTimeoutMs: 1000, requestTimeoutMs: 4000 },
  ejection: { consecutiveFailures: 3, ejectMs: 1000 },
  log: { level: "info" },
};

let mesh: MeshFixture;
let dir: string;
let pa: ProxyProcess;
let pb: ProxyProcess;
let ledgerA: LedgerBackend;
let ledgerB: LedgerBackend;
const figures: Record<string, unknown>[] = [];

before(async () => {
  mesh = await MeshFixture.start();
  dir = await mkdtemp(join(tmpdir(), "ztr-faults-"));
  const port = await freePort([A, B]);
  ledgerA = new LedgerBackend("ledger-a", A, port);
  ledgerB = new LedgerBackend("ledger-b", B, port);
  await Promise.all([ledgerA.start(), ledgerB.start()]);
  mesh.api.upsert(
    ENDPOINTSLICES,
    endpointSlice("default", "ledger", [{ name: "http", port }], [
      { ip: A, node: "a" },
      { ip: B, node: "b" },
    ]),
  );
  const procs: ProxyProcess[] = [];
  for (const [node, ip] of [["a", A], ["b", B]] as const) {
    await mesh.nodes[node].proxy.shutdown();
    const path = join(dir, `config-${node}.yaml`);
    await ProxyProcess.write(path, mesh.config(ip, EXTRA));
    procs.push(new ProxyProcess(node, ip, mesh.ports.admin, path));
  }
  [pa, pb] = procs as [ProxyProcess, ProxyProcess];
  await Promise.all(procs.map((p) => p.start()));
  // Both ledger endpoints known and serving before any test.
  const warm = startLoad();
  await waitFor("both ledger endpoints to serve", () => ledgerA.received > 0 && ledgerB.received > 0);
  await warm.stop();
});

after(async () => {
  if (figures.length > 0) console.log(`# fault figures\n${figures.map((f) => `# ${JSON.stringify(f)}`).join("\n")}`);
  await pa?.kill();
  await pb?.kill();
  await ledgerA?.kill();
  await ledgerB?.kill();
  await mesh?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function startLoad(): Load {
  return new Load({
    host: A,
    port: mesh.ports.outgoing,
    url: "http://ledger/",
    concurrency: CONCURRENCY,
    postEvery: 4,
    maxMs: 90_000,
  });
}

/** Waits (bounded) for the connections the load used to close, then reads each proxy's descriptors. */
async function settledDescriptors(limit?: { a: number; b: number }): Promise<{ a: number; b: number; aSockets: number; bSockets: number }> {
  if (limit !== undefined) {
    await waitFor(
      "the proxies' descriptors to return to where they were",
      () => fdCount(pa.pid) <= limit.a && fdCount(pb.pid) <= limit.b,
      { timeoutMs: 40_000, detail: () => `; a ${fdCount(pa.pid)} (was ${limit.a}), b ${fdCount(pb.pid)} (was ${limit.b})` },
    ).catch(() => undefined);
  } else {
    await sleep(500);
  }
  return { a: fdCount(pa.pid), b: fdCount(pb.pid), aSockets: socketCount(pa.pid), bSockets: socketCount(pb.pid) };
}

/** Request ids that reached the apps more than once, across both nodes. */
function replayed(outcomes: readonly Outcome[], method: string): string[] {
  const ids = new Set(outcomes.filter((o) => o.method === method).map((o) => o.id));
  const out: string[] = [];
  for (const id of ids) if ((ledgerA.seen.get(id) ?? 0) + (ledgerB.seen.get(id) ?? 0) > 1) out.push(id);
  return out;
}

/** Runs `fault` under load and records the figures: requests, failures, replays, recovery time, descriptors. */
async function underLoad(
  name: string,
  fault: (load: Load) => Promise<{ recoveryMs?: number; note?: string }>,
): Promise<{ load: Load; figure: Record<string, unknown> }> {
  const before = await settledDescriptors();
  const load = startLoad();
  await sleep(1000);
  const { recoveryMs, note } = await fault(load);
  await sleep(1000);
  await load.stop();
  const failedGet = load.failed("GET");
  const failedPost = load.failed("POST");
  const desc = await settledDescriptors({ a: before.a + SLACK, b: before.b + SLACK });
  const figure = {
    fault: name,
    requests: load.count(),
    gets: load.count("GET"),
    posts: load.count("POST"),
    failedGets: failedGet.length,
    failedPosts: failedPost.length,
    replayedPosts: replayed(load.outcomes, "POST").length,
    recoveryMs,
    fds: { a: `${before.a} -> ${desc.a}`, b: `${before.b} -> ${desc.b}` },
    sockets: { a: `${before.aSockets} -> ${desc.aSockets}`, b: `${before.bSockets} -> ${desc.bSockets}` },
    failures: describeFailures(load.outcomes),
    note,
  };
  figures.push(figure);
  return { load, figure };
}

function assertCommon(load: Load, figure: Record<string, unknown>): void {
  assert.equal(figure.replayedPosts, 0, `POSTs reached an app twice: ${replayed(load.outcomes, "POST").join(", ")}`);
  for (const o of load.failed()) {
    assert.ok(o.status === 502 || o.status === 503 || o.status === 504, `a failure must be the mesh's answer, not a dropped connection: ${JSON.stringify(o)}`);
    assert.ok(o.l5dErr !== undefined && o.l5dErr !== "", `a failure names its reason: ${JSON.stringify(o)}`);
  }
  const fdsA = String(figure.fds && (figure.fds as { a: string }).a).split(" -> ").map(Number);
  const fdsB = String(figure.fds && (figure.fds as { b: string }).b).split(" -> ").map(Number);
  assert.ok(fdsA[1]! <= fdsA[0]! + SLACK, `node a's proxy holds more descriptors than before: ${JSON.stringify(figure.fds)}`);
  assert.ok(fdsB[1]! <= fdsB[0]! + SLACK, `node b's proxy holds more descriptors than before: ${JSON.stringify(figure.fds)}`);
}

function proxyOutput(): string {
  return `; proxy a ${pa.running ? "running" : "exited"}, b ${pb.running ? "running" : "exited"}\n--- a:\n${pa.output.slice(-1500)}\n--- b:\n${pb.output.slice(-1500)}`;
}

/** Milliseconds from now until ledger-b serves a request again (bounded). */
async function untilLedgerBServes(from: number): Promise<number> {
  const seen = ledgerB.received;
  await waitFor("node b's endpoint to serve again", () => ledgerB.received > seen, { timeoutMs: 30_000, detail: proxyOutput });
  return Date.now() - from;
}

describe("faults under load", () => {
  it("SIGKILL of node b's proxy, then a restart: GETs are retried on node a, no POST is replayed", async () => {
    const retriesBefore = await metric(A, mesh.ports.admin, "mesh_retries_total");
    const { load, figure } = await underLoad("kill -9 of node b's proxy, restarted after 2 s", async () => {
      await pb.kill();
      await sleep(2000);
      const restarted = Date.now();
      await pb.start();
      return { recoveryMs: await untilLedgerBServes(restarted) };
    });
    assertCommon(load, figure);
    // GETs in flight on node b at the kill are retried on node a; POSTs in
    // flight may have reached the app, so they fail rather than run twice.
    assert.equal(load.failed("GET").length, 0, `GETs failed: ${figure.failures}`);
    assert.ok(load.failed("POST").length <= CONCURRENCY, `${load.failed().length} failed: ${figure.failures}`);
    assert.ok(load.count("GET") > 0 && load.count("POST") > 0);
    const retries = (await metric(A, mesh.ports.admin, "mesh_retries_total")) - retriesBefore;
    figure.retries = retries;
    assert.ok(retries > 0, "node a counted its retries");
  });

  it("the backend on node b killed, then restarted: requests move to node a's endpoint", async () => {
    const { load, figure } = await underLoad("kill of the backend on node b, restarted after 2 s", async () => {
      await ledgerB.kill();
      await sleep(2000);
      const restarted = Date.now();
      await ledgerB.start();
      return { recoveryMs: await untilLedgerBServes(restarted) };
    });
    assertCommon(load, figure);
    assert.ok(load.failed().length <= CONCURRENCY, `${load.failed().length} failed: ${figure.failures}`);
  });

  it("node b's link cut (blackholed) for 5 s, then restored", async () => {
    const relay = new LinkRelay(B_LINK, mesh.ports.incoming, { host: B, port: mesh.ports.incoming });
    await relay.start();
    try {
      // Node b's proxy is now reached over the relay.
      mesh.api.upsert(PODS, meshPod("default", "l5d-b", "b", B_LINK, MESH_LABELS));
      await waitFor("node a to dial node b through the link", async () => {
        const l = startLoad();
        await sleep(200);
        await l.stop();
        return relay.accepted > 0;
      });
      const { load, figure } = await underLoad("node b's link blackholed for 5 s", async () => {
        relay.cut();
        await sleep(5000);
        const restored = Date.now();
        relay.restore();
        return { recoveryMs: await untilLedgerBServes(restored) };
      });
      assertCommon(load, figure);
      // The silent connection is found by its unanswered PING and dropped; GETs
      // on it are retried on node a, a POST on it may fail (it may have been processed).
      assert.match(pa.output, /"event":"peer_unresponsive"/, "node a noticed the dead peer connection");
      assert.equal(load.failed("GET").length, 0, `GETs failed: ${figure.failures}`);
      assert.ok(load.failed().length <= CONCURRENCY, `${load.failed().length} failed: ${figure.failures}`);
    } finally {
      mesh.api.upsert(PODS, meshPod("default", "l5d-b", "b", B, MESH_LABELS));
      await relay.stop();
    }
  });

  it("the Kubernetes API unreachable: the last known endpoints keep serving, changes apply once it is back", async () => {
    let back = Number.POSITIVE_INFINITY;
    const { load, figure } = await underLoad("Kubernetes API unreachable for 5 s", async () => {
      mesh.api.setDown(true);
      await sleep(5000);
      back = Date.now();
      mesh.api.setDown(false);
      // A change made after the outage must reach node a: node b's endpoint leaves.
      mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "ledger", [{ name: "http", port: ledgerA.port }], [{ ip: A, node: "a" }]));
      let seen = ledgerB.received;
      await waitFor("node a to stop sending to the removed endpoint", async () => {
        const now = ledgerB.received;
        const quiet = now === seen;
        seen = now;
        await sleep(300);
        return quiet && ledgerB.received === now;
      }, { timeoutMs: 40_000 });
      const recoveryMs = Date.now() - back;
      mesh.api.upsert(
        ENDPOINTSLICES,
        endpointSlice("default", "ledger", [{ name: "http", port: ledgerA.port }], [
          { ip: A, node: "a" },
          { ip: B, node: "b" },
        ]),
      );
      return { recoveryMs, note: "recoveryMs: from the API's return until a change made then took effect" };
    });
    assertCommon(load, figure);
    const duringOutage = load.failed().filter((o) => o.at < back);
    assert.equal(duringOutage.length, 0, `no request may fail while the API is away: ${describeFailures(duringOutage)}`);
    // Afterwards node b drops its endpoint a moment before node a does: node b
    // refuses what still comes (REFUSED_STREAM) and node a retries it, except a
    // POST whose body it has already started sending.
    assert.equal(load.failed("GET").length, 0, `GETs failed: ${figure.failures}`);
    assert.ok(load.failed("POST").length <= CONCURRENCY, `POSTs failed: ${figure.failures}`);
    figure.failedDuringOutage = duringOutage.length;
  });
});
