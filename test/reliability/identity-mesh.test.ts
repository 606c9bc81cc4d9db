// Two proxies whose certificates the identity service issues, each for its own
// node, with leaves of a few seconds: what each presents, renewal under load,
// an outage of the service, expiry, and a dialler reaching the wrong node.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import type { ProxyConfigInput } from "@zt-mesh/proxy-config";
import { type RunningProxy, startProxy } from "../../proxy/src/proxy";
import { createLogger } from "../../proxy/src/telemetry/log";
import { PODS, meshPod } from "../support/fake-kube-api";
import { IdentityFixture, TRUST_DOMAIN } from "../support/identity";
import { MESH_LABELS, MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { httpGet } from "../support/net";
import { sleep, waitFor } from "../support/wait";
import { Load, describeFailures } from "./support";

const A = "127.0.0.2";
const B = "127.0.0.3";
const C = "127.0.0.4";
/** Leaves live 8 s: renewed at about 5.3 s. */
const LIFETIME_MS = 8000;

let mesh: MeshFixture;
let identity: IdentityFixture;
const tokenFiles: Record<string, string> = {};

function identityConfig(node: string): ProxyConfigInput {
  return {
    tls: { source: "identity-service", caBundle: identity.bundlePath },
    identity: { url: identity.url, tokenFile: tokenFiles[node]!, trustDomain: TRUST_DOMAIN, retryMs: 100 },
  };
}

/** The certificate a proxy presents on 4141, read by a client that checks the chain to the anchor. */
function served(ip: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: ip, port: mesh.ports.incoming, ca: identity.anchor.cert, checkServerIdentity: () => undefined }, () => {
      resolve(s.getPeerX509Certificate()!);
      s.destroy();
    });
    s.on("error", reject);
  });
}

async function issued(): Promise<number> {
  return (await identity.metrics.issued.get()).values[0]?.value ?? 0;
}

before(async () => {
  mesh = await MeshFixture.start({
    beforeProxies: async (m) => {
      identity = await IdentityFixture.start(m.api, m.kubeconfig, { maxLifetimeMs: LIFETIME_MS, limits: { perSourceBurst: 100, perSourcePerSecond: 50 } });
      for (const node of ["a", "b", "c"]) tokenFiles[node] = await identity.tokenFile(node, `token-${node}`, identity.proxyToken(`l5d-${node}`, node));
    },
    config: (node) => identityConfig(node),
  });
});

after(async () => {
  await mesh?.close();
  await identity?.close();
});

describe("proxies with certificates from the identity service", () => {
  it("each presents a certificate naming its own node, and hello reaches world", async () => {
    const [a, b] = await Promise.all([served(A), served(B)]);
    assert.equal(a.subjectAltName, `URI:spiffe://${TRUST_DOMAIN}/ns/default/node/a`);
    assert.equal(b.subjectAltName, `URI:spiffe://${TRUST_DOMAIN}/ns/default/node/b`);
    assert.notEqual(a.fingerprint256, b.fingerprint256);
    assert.ok(b.validToDate.getTime() - Date.now() <= LIFETIME_MS);
    const reply = await httpGet(A, mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } });
    assert.equal(reply.body, "Hello world");
    assert.ok((await metric(A, mesh.ports.admin, "mesh_certificate_expiry_timestamp_seconds", { certificate: "mesh" })) > Date.now() / 1000);
  });

  it("keeps traffic flowing while the service is down for longer than a renewal period, and counts the failures", async () => {
    // Both proxies restart together, so they renew in step: stopped just
    // after both renewed, the outage covers the next renewal of each, and
    // ends before either certificate does.
    await Promise.all(
      (["a", "b"] as const).map(async (node) => {
        const n = mesh.nodes[node];
        await n.proxy.shutdown();
        n.proxy = await startProxy({ config: mesh.config(n.ip, identityConfig(node)), nodeName: node, hostIp: n.ip, log: createLogger("error") });
      }),
    );
    await Promise.all(Object.values(mesh.nodes).map((n) => mesh.waitReady(n)));
    const n = await issued();
    await waitFor("both proxies to renew", async () => (await issued()) >= n + 2, { timeoutMs: 10_000 });
    const [a, b] = await Promise.all([served(A), served(B)]);
    assert.ok(Math.abs(a.validToDate.getTime() - b.validToDate.getTime()) <= 1000, `the proxies renew in step: ${a.validTo}, ${b.validTo}`);
    await identity.stop();
    const failuresBefore = await metric(A, mesh.ports.admin, "mesh_certificate_renewal_failures_total", { reason: "unreachable" });
    const load = new Load({ host: A, port: mesh.ports.outgoing, url: "http://world/", concurrency: 4, postEvery: 3, maxMs: 60_000 });
    await sleep((LIFETIME_MS * 3) / 4); // longer than a renewal period (two thirds of the lifetime)
    const readyDuringOutage = await httpGet(A, mesh.ports.admin, "/admin/ready");
    await identity.resume();
    const m = await issued();
    await waitFor("renewals after the outage", async () => (await issued()) >= m + 2, { timeoutMs: 10_000 });
    await sleep(500);
    await load.stop();
    assert.equal(readyDuringOutage.status, 200, "still ready on the certificate held");
    assert.ok((await metric(A, mesh.ports.admin, "mesh_certificate_renewal_failures_total", { reason: "unreachable" })) > failuresBefore);
    assert.ok(load.count() > 100, `only ${load.count()} requests ran`);
    assert.equal(load.failed().length, 0, describeFailures(load.outcomes));
  });

  it("renews leaves of a few seconds under load with zero failed requests", async () => {
    const firstB = (await served(B)).serialNumber;
    const issuedBefore = await issued();
    const load = new Load({ host: A, port: mesh.ports.outgoing, url: "http://world/", concurrency: 6, postEvery: 3, maxMs: 60_000 });
    await sleep(12_000);
    await load.stop();
    assert.ok(load.count() > 200, `only ${load.count()} requests ran`);
    assert.equal(load.failed().length, 0, describeFailures(load.outcomes));
    assert.ok((await issued()) - issuedBefore >= 4, "each proxy renewed at least twice");
    assert.notEqual((await served(B)).serialNumber, firstB, "node b serves a renewed certificate");
  });

  it("stops being ready when its certificate expires, and is ready again once renewed", async () => {
    await identity.stop();
    try {
      await waitFor("node a's certificate to expire", async () => (await httpGet(A, mesh.ports.admin, "/admin/ready")).status === 503, { timeoutMs: LIFETIME_MS + 3000 });
      assert.match((await httpGet(A, mesh.ports.admin, "/admin/ready")).body, /certificate expired/);
    } finally {
      await identity.resume();
    }
    for (const ip of [A, B]) {
      await waitFor(`the proxy on ${ip} to be ready again`, async () => (await httpGet(ip, mesh.ports.admin, "/admin/ready")).status === 200, { timeoutMs: 15_000 });
    }
    assert.equal((await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world");
  });

  it("is not ready until it holds a certificate: a proxy starting while the service is down waits for it", async () => {
    mesh.api.upsert(PODS, meshPod("default", "l5d-c", "c", C, MESH_LABELS));
    await identity.stop();
    const starting = startProxy({ config: mesh.config(C, identityConfig("c")), nodeName: "c", hostIp: C, log: createLogger("error") });
    let c: RunningProxy | undefined;
    try {
      try {
        await waitFor("node c to say it cannot reach the service", async () => {
          const r = await httpGet(C, mesh.ports.admin, "/admin/ready").catch(() => undefined);
          return r?.status === 503 && /waiting for a certificate from the identity service \(identity service unreachable/.test(r.body);
        });
        await assert.rejects(httpGet(C, mesh.ports.incoming, "/"), "4141 is not open without a certificate");
      } finally {
        await identity.resume();
        c = await starting;
      }
      await waitFor("node c to be ready", async () => (await httpGet(C, mesh.ports.admin, "/admin/ready")).status === 200);
      assert.equal((await served(C)).subjectAltName, `URI:spiffe://${TRUST_DOMAIN}/ns/default/node/c`);
    } finally {
      await c?.shutdown();
    }
  });

  it("a dialler refuses a peer whose certificate names another node than the endpoint's", async () => {
    mesh.api.upsert(PODS, meshPod("default", "l5d-c", "c", C, MESH_LABELS));
    let c: RunningProxy | undefined;
    try {
      c = await startProxy({ config: mesh.config(C, identityConfig("c")), nodeName: "c", hostIp: C, log: createLogger("error") });
      // Discovery now says node b's proxy is at C, where node c's proxy answers.
      mesh.api.upsert(PODS, meshPod("default", "l5d-b", "b", C, MESH_LABELS));
      await waitFor("node a to see b's proxy at C", () => mesh.nodes.a.proxy.index.peerForNode("b") === C);
      const before = await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "client", reason: "wrong_node" });
      const reply = await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } });
      assert.notEqual(reply.status, 200);
      assert.match(String(reply.headers["l5d-err"]), /does not name node b/);
      assert.ok((await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "client", reason: "wrong_node" })) > before);
      assert.equal(await metric(C, mesh.ports.admin, "mesh_requests_total", { direction: "incoming" }), 0, "node c's proxy received no request");
    } finally {
      mesh.api.upsert(PODS, meshPod("default", "l5d-b", "b", B, MESH_LABELS));
      await c?.shutdown();
    }
    await waitFor("node a to see b's proxy at B again", () => mesh.nodes.a.proxy.index.peerForNode("b") === B);
    const reply = await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } });
    assert.equal(reply.body, "world");
  });
});
