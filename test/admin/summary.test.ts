// What the admin page polls: /admin/summary.json, and the percentile estimate
// behind its latency columns, which must be Prometheus' histogram_quantile.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AdminSummaryJson } from "../../proxy/src/admin/summary";
import { histogramQuantile } from "../../proxy/src/admin/quantile";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { httpGet } from "../support/net";

const near = (actual: number | undefined, expected: number): void =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`);

describe("histogramQuantile, as Prometheus' histogram_quantile", () => {
  // 10 observations up to 0.1 s, 20 more up to 0.2 s, 10 more up to 0.5 s.
  const buckets = [
    { le: 0.1, count: 10 },
    { le: 0.2, count: 30 },
    { le: 0.5, count: 40 },
    { le: Infinity, count: 40 },
  ];

  it("interpolates linearly within the bucket that holds the rank", () => {
    near(histogramQuantile(0.5, buckets), 0.15);
    near(histogramQuantile(1, buckets), 0.5);
  });

  it("starts the lowest bucket at zero", () => {
    near(histogramQuantile(0.1, buckets), 0.04);
  });

  it("answers a rank in the +Inf bucket with the highest finite bound", () => {
    assert.equal(histogramQuantile(0.9, [{ le: 0.1, count: 5 }, { le: Infinity, count: 10 }]), 0.1);
  });

  it("has no answer before anything was observed", () => {
    assert.equal(histogramQuantile(0.5, [{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }]), undefined);
  });
});

describe("/admin/summary.json", () => {
  let mesh: MeshFixture;
  const A = "127.0.0.2";

  before(async () => {
    mesh = await MeshFixture.start();
    for (let i = 0; i < 4; i++) await httpGet(A, mesh.ports.outgoing, "http://world/", { localAddress: A, headers: { host: "world" } });
    await httpGet(A, mesh.ports.outgoing, "http://nowhere/", { localAddress: A, headers: { host: "nowhere" } });
  });

  after(async () => {
    await mesh?.close();
  });

  it("counts what /metrics counts, and names the peer by its node", async () => {
    const r = await httpGet(A, mesh.ports.admin, "/admin/summary.json");
    assert.equal(r.status, 200);
    assert.equal(r.headers["cache-control"], "no-store");
    const s = JSON.parse(r.body) as AdminSummaryJson;
    assert.equal(s.node, "a");
    const world = s.services.find((x) => x.direction === "outgoing" && x.service === "default/world");
    assert.equal(world?.requests, await metric(A, mesh.ports.admin, "mesh_request_duration_seconds_count", { direction: "outgoing", service: "default/world" }));
    assert.equal(world?.requests, 4);
    assert.equal(world?.succeeded, 4);
    assert.ok(world.latency.p50 !== null && world.latency.p50 <= world.latency.p99!);
    const unbound = s.services.find((x) => x.service === "unbound");
    assert.deepEqual([unbound?.requests, unbound?.succeeded, unbound?.byClass["5xx"]], [1, 0, 1]);
    assert.deepEqual(s.peers, [{ address: "127.0.0.3", port: mesh.ports.incoming, state: "connected", streams: 0, node: "b" }]);
    assert.equal(s.tls.identity, IDENTITY);
    assert.ok(s.tls.certificate !== null, "the proxy holds its certificate");
    assert.equal(Date.parse(s.tls.certificate.notAfter) / 1000, await metric(A, mesh.ports.admin, "mesh_certificate_expiry_timestamp_seconds", { certificate: "mesh" }));
    assert.equal(s.tls.cas.length, 1);
    assert.equal(s.dtab.outgoing, JSON.parse((await httpGet(A, mesh.ports.admin, "/admin/dtab")).body).outgoing);
  });
});
