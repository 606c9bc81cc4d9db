import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { parseConfig } from "@zt-mesh/proxy-config";
import { EndpointIndex } from "../../proxy/src/discovery/endpoint-index";
import { KubernetesDiscovery } from "../../proxy/src/discovery/kubernetes-watch";
import { parseEndpointSlice, parseMeshPod } from "../../proxy/src/discovery/objects";
import { KubernetesNamer } from "../../proxy/src/routing/k8s-namer";
import { createLogger } from "../../proxy/src/telemetry/log";
import { MeshMetrics } from "../../proxy/src/telemetry/metrics";
import { ENDPOINTSLICES, FakeKubeApi, PODS, endpointSlice, meshPod } from "../support/fake-kube-api";

const recorded = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, "..", "fixtures", "kubernetes", name), "utf8"));

function indexWith(...slices: string[]): EndpointIndex {
  const index = new EndpointIndex();
  for (const s of slices) index.upsertSlice(parseEndpointSlice(recorded(s))!);
  return index;
}

describe("discovery from recorded API objects", () => {
  it("keeps only ready, non-terminating endpoints, with their nodes", () => {
    const r = indexWith("endpointslice-world.json").lookup("default", "http", "world");
    assert.equal(r.kind, "found");
    const eps = r.kind === "found" ? r.endpoints : [];
    assert.deepEqual(
      eps.map((e) => `${e.key}@${e.nodeName}`),
      ["10.244.1.7:7778@node-b", "10.244.2.9:7778@node-c", "10.244.3.4:7778@node-a"],
      "not-ready 10.244.2.10 and terminating 10.244.1.8 are left out; empty conditions mean ready",
    );
  });

  it("selects the port by Service port name or by target port number", () => {
    const index = indexWith("endpointslice-world.json");
    const metrics = index.lookup("default", "metrics", "world");
    assert.equal(metrics.kind === "found" && metrics.endpoints[0]!.port, 9102);
    const numeric = index.lookup("default", "7778", "world");
    assert.equal(numeric.kind === "found" && numeric.endpoints.length, 3);
    assert.equal(index.lookup("default", "dns", "world").kind, "no-port", "UDP ports are not routable");
    assert.equal(index.lookup("default", "http", "nope").kind, "no-service");
  });

  it("merges a Service's slices and drops duplicate addresses", () => {
    const r = indexWith("endpointslice-world.json", "endpointslice-world-2.json").lookup("default", "http", "world");
    assert.deepEqual(
      r.kind === "found" && r.endpoints.map((e) => e.key),
      ["10.244.1.7:7778", "10.244.2.9:7778", "10.244.3.4:7778", "10.244.4.2:7778"],
    );
  });

  it("forgets a slice when it is deleted, and the Service when its last slice goes", () => {
    const index = indexWith("endpointslice-world.json", "endpointslice-world-2.json");
    index.deleteSlice("default/world-7x2lq");
    const r = index.lookup("default", "http", "world");
    assert.deepEqual(r.kind === "found" && r.endpoints.map((e) => e.key), ["10.244.1.7:7778", "10.244.4.2:7778"]);
    index.deleteSlice("default/world-q9m3z");
    assert.equal(index.lookup("default", "http", "world").kind, "no-service");
  });

  it("ignores FQDN slices, which have no addresses to dial", () => {
    assert.equal(parseEndpointSlice(recorded("endpointslice-kubernetes-fqdn.json")), undefined);
  });

  it("maps each node to its ready mesh proxy only", () => {
    const index = new EndpointIndex();
    for (const item of (recorded("pods-mesh.json") as { items: unknown[] }).items) index.upsertMeshPod(parseMeshPod(item)!);
    assert.deepEqual([...index.peerNodes()], [["node-b", "10.244.1.2"]], "not-ready, deleting and pending pods are not peers");
  });

  it("limits the incoming side to endpoints on its own node", () => {
    const index = indexWith("endpointslice-world.json");
    const r = new KubernetesNamer(index, "node-c").lookup(["default", "http", "world"]);
    assert.deepEqual(r.kind === "bound" && r.dest.kind === "service" && r.dest.endpoints.map((e) => e.key), ["10.244.2.9:7778"]);
  });
});

describe("discovery watch against an API server", () => {
  let api: FakeKubeApi;
  let dir: string;
  let discovery: KubernetesDiscovery;
  const index = new EndpointIndex();
  const logs: string[] = [];

  before(async () => {
    api = new FakeKubeApi();
    await api.start();
    dir = await mkdtemp(join(tmpdir(), "zt-mesh-disc-"));
    await api.writeKubeconfig(join(dir, "kubeconfig"));
    api.upsert(ENDPOINTSLICES, endpointSlice("default", "world", [{ name: "http", port: 7778 }], [{ ip: "10.0.0.1", node: "n1" }]));
    api.upsert(PODS, meshPod("mesh", "l5d-1", "n1", "10.0.9.1", { app: "l5d" }));
    api.upsert(PODS, meshPod("other", "l5d-x", "n9", "10.0.9.9", { app: "l5d" }));
    const config = parseConfig({
      kubernetes: { kubeconfig: join(dir, "kubeconfig"), meshNamespace: "mesh", meshPodSelector: "app=l5d", watchRetryMs: 50 },
    }).kubernetes;
    discovery = new KubernetesDiscovery({
      config,
      index,
      log: createLogger("debug", (l) => logs.push(l)),
      metrics: new MeshMetrics({ processMetrics: false }),
    });
    discovery.start();
  });

  after(async () => {
    await discovery.stop();
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const eventually = async (what: string, check: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const worldKeys = (): string[] => {
    const r = index.lookup("default", "http", "world");
    return r.kind === "found" ? r.endpoints.map((e) => e.key) : [];
  };

  it("becomes ready after the first list, with the listed objects indexed", async () => {
    await discovery.whenReady();
    assert.deepEqual(worldKeys(), ["10.0.0.1:7778"]);
    assert.equal(index.peerForNode("n1"), "10.0.9.1");
    assert.equal(index.peerForNode("n9"), undefined, "pods outside the mesh namespace are not watched");
  });

  it("applies watch events as they arrive", async () => {
    api.upsert(
      ENDPOINTSLICES,
      endpointSlice("default", "world", [{ name: "http", port: 7778 }], [
        { ip: "10.0.0.1", node: "n1" },
        { ip: "10.0.0.2", node: "n2" },
      ]),
    );
    await eventually("the new endpoint", () => worldKeys().length === 2);
  });

  it("keeps serving the last known endpoints while the API is down, then resyncs", async () => {
    api.setDown(true);
    await eventually("a watch failure", () => logs.some((l) => l.includes("discovery_watch_failed")));
    assert.deepEqual(worldKeys(), ["10.0.0.1:7778", "10.0.0.2:7778"]);
    // A change made while the proxy could not see it...
    api.upsert(ENDPOINTSLICES, endpointSlice("default", "world", [{ name: "http", port: 7778 }], [{ ip: "10.0.0.3", node: "n3" }]));
    api.setDown(false);
    // ...is picked up by the relist after the API returns.
    await eventually("the resync", () => worldKeys().join() === "10.0.0.3:7778");
  });
});
