// Certificate rotation under continuous load, node by node as kubelets update
// mounted Secrets (each node at its own moment): a re-issued mesh certificate,
// then a CA rotation through a bundle trusting the old and the new CA. No
// request may fail in either. Then a peer presenting an expired certificate:
// the dialling proxy refuses it and counts it in its metrics.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Server as TlsServer, connect as tlsConnect, createServer as createTlsServer } from "node:tls";
import { startProxy } from "../../proxy/src/proxy";
import { createLogger } from "../../proxy/src/telemetry/log";
import { ENDPOINTSLICES, PODS, endpointSlice, meshPod } from "../support/fake-kube-api";
import { IDENTITY, MESH_LABELS, MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { httpGet } from "../support/net";
import type { KeyPair, TestCa } from "../support/pki";
import { sleep, waitFor } from "../support/wait";
import { Load, describeFailures } from "./support";

const A = "127.0.0.2";
const B = "127.0.0.3";
const IPS = { a: A, b: B } as const;

let mesh: MeshFixture;
let dir: string;
/** Each node's mounted Secret, in its own directory. */
const tlsDirs = { a: "", b: "" };
const figures: Record<string, unknown>[] = [];

async function writeNodeTls(node: "a" | "b", caBundle: string, pair: KeyPair): Promise<void> {
  await mkdir(tlsDirs[node], { recursive: true });
  await writeFile(join(tlsDirs[node], "ca-bundle.crt"), caBundle);
  await writeFile(join(tlsDirs[node], "tls.crt"), pair.cert);
  await writeFile(join(tlsDirs[node], "tls.key"), pair.key);
}

/** Updates one node's files and waits until its proxy has applied them. */
async function rotateNode(node: "a" | "b", caBundle: string, pair: KeyPair): Promise<void> {
  const applied = { what: "tls", result: "applied" };
  const before = await metric(IPS[node], mesh.ports.admin, "mesh_reloads_total", applied);
  await writeNodeTls(node, caBundle, pair);
  await waitFor(`node ${node} to apply its new TLS files`, async () => (await metric(IPS[node], mesh.ports.admin, "mesh_reloads_total", applied)) > before);
  // Kubelets update nodes at different moments: let traffic run on the mixed state.
  await sleep(700);
}

/** Serial of the certificate node b presents on 4141 now. */
function servedSerial(ca: string, pair: KeyPair): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: B, port: mesh.ports.incoming, ca, ...pair, servername: IDENTITY }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.destroy();
    });
    s.on("error", reject);
  });
}

before(async () => {
  mesh = await MeshFixture.start();
  dir = await mkdtemp(join(tmpdir(), "ztr-rotation-"));
  // Both proxies restart on their own copy of the Secret.
  for (const node of ["a", "b"] as const) {
    tlsDirs[node] = join(dir, `tls-${node}`);
    await writeNodeTls(node, mesh.ca.cert, mesh.meshCert);
    const n = mesh.nodes[node];
    await n.proxy.shutdown();
    n.proxy = await startProxy({
      config: mesh.config(IPS[node], {
        tls: {
          caBundle: join(tlsDirs[node], "ca-bundle.crt"),
          cert: join(tlsDirs[node], "tls.crt"),
          key: join(tlsDirs[node], "tls.key"),
          reloadIntervalMs: 200,
        },
      }),
      nodeName: node,
      hostIp: IPS[node],
      log: createLogger("debug", (line) => n.logs.push(line)),
    });
  }
  await Promise.all(Object.values(mesh.nodes).map((n) => mesh.waitReady(n)));
});

after(async () => {
  if (figures.length > 0) console.log(`# rotation figures\n${figures.map((f) => `# ${JSON.stringify(f)}`).join("\n")}`);
  await mesh?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Runs `steps` under load from node a to world on node b; returns the load. */
async function underLoad(name: string, steps: () => Promise<void>): Promise<Load> {
  const handshakesBefore = await metric(A, mesh.ports.admin, "mesh_tls_handshakes_total", { side: "client" });
  const load = new Load({ host: A, port: mesh.ports.outgoing, url: "http://world/", concurrency: 6, postEvery: 3, maxMs: 90_000 });
  await sleep(500);
  await steps();
  await sleep(500);
  await load.stop();
  const handshakes = (await metric(A, mesh.ports.admin, "mesh_tls_handshakes_total", { side: "client" })) - handshakesBefore;
  figures.push({ rotation: name, requests: load.count(), failed: load.failed().length, newPeerHandshakes: handshakes, failures: describeFailures(load.outcomes) });
  return load;
}

describe("certificate rotation under load", () => {
  let ca2: TestCa;

  it("re-issued mesh certificates, node a then node b: zero failed requests", async () => {
    const a2 = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    const b2 = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    const load = await underLoad("re-issue of the mesh certificate", async () => {
      await rotateNode("a", mesh.ca.cert, a2);
      await rotateNode("b", mesh.ca.cert, b2);
    });
    assert.ok(load.count() > 50, `only ${load.count()} requests ran`);
    assert.equal(load.failed().length, 0, describeFailures(load.outcomes));
    assert.equal(await servedSerial(mesh.ca.cert, a2), new X509Certificate(b2.cert).serialNumber, "node b serves its new certificate");
    mesh.meshCert = b2;
  });

  it("CA rotation with an overlap bundle (trust both, switch certificates, drop the old CA): zero failed requests", async () => {
    ca2 = await mesh.pki.ca("mesh-ca-2");
    const both = mesh.ca.cert + ca2.cert;
    const a3 = await mesh.pki.leaf(ca2, { dns: [IDENTITY] });
    const b3 = await mesh.pki.leaf(ca2, { dns: [IDENTITY] });
    const oldA = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    const load = await underLoad("CA rotation (old+new bundle, new certificates, new CA only)", async () => {
      // 1. Every node trusts both CAs, still presenting old-CA certificates.
      await rotateNode("a", both, oldA);
      await rotateNode("b", both, mesh.meshCert);
      // 2. Certificates from the new CA, one node at a time.
      await rotateNode("a", both, a3);
      await rotateNode("b", both, b3);
      // 3. The old CA is dropped.
      await rotateNode("a", ca2.cert, a3);
      await rotateNode("b", ca2.cert, b3);
    });
    assert.ok(load.count() > 50, `only ${load.count()} requests ran`);
    assert.equal(load.failed().length, 0, describeFailures(load.outcomes));
    assert.equal(await servedSerial(ca2.cert, a3), new X509Certificate(b3.cert).serialNumber);
    assert.equal((await httpGet(A, mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } })).body, "Hello world");
  });

  it("after the rotation, a certificate from the old CA is refused", async () => {
    const before = await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "server", reason: "untrusted_certificate" });
    const old = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = tlsConnect({ host: B, port: mesh.ports.incoming, ca: ca2.cert, ...old, servername: IDENTITY }, () => {
          // TLS 1.3: the server's verdict on our certificate arrives after the handshake.
          s.once("data", () => resolve());
          s.write("GET /admin/ping HTTP/1.1\r\nHost: l5d\r\n\r\n");
        });
        s.once("error", reject);
        s.once("close", () => reject(new Error("closed by the server")));
      }),
    );
    await waitFor("the refusal to be counted", async () =>
      (await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "server", reason: "untrusted_certificate" })) > before,
    );
  });
});

describe("a peer presenting an expired certificate", () => {
  let rogue: TlsServer | undefined;
  after(() => rogue?.close());

  it("is refused by the dialling proxy, answered 502, and counted as expired_certificate", async () => {
    // Node c's "proxy" presents a mesh certificate (current CA, right identity) that has expired.
    const issuer = await findIssuer(await readFile(join(tlsDirs.a, "ca-bundle.crt"), "utf8"));
    const expired = await mesh.pki.leaf(issuer, { dns: [IDENTITY], start: "20200101000000Z", end: "20200201000000Z" });
    rogue = createTlsServer({ ...expired, minVersion: "TLSv1.3", ALPNProtocols: ["h2"] }, (s) => s.destroy());
    await new Promise<void>((r) => rogue!.listen(mesh.ports.incoming, "127.0.0.6", () => r()));
    mesh.api.upsert(PODS, meshPod("default", "l5d-c", "c", "127.0.0.6", MESH_LABELS));
    mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "stale", [{ name: "http", port: 8080 }], [{ ip: "127.0.0.6", node: "c" }]));
    const reason = { side: "client", reason: "expired_certificate" };
    const before = await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason);
    let r = await httpGet(A, mesh.ports.outgoing, "http://stale/", { headers: { host: "stale" } });
    const deadline = Date.now() + 10_000;
    while (/not found|no ready mesh proxy/.test(String(r.headers["l5d-err"])) && Date.now() < deadline) {
      await sleep(50);
      r = await httpGet(A, mesh.ports.outgoing, "http://stale/", { headers: { host: "stale" } });
    }
    assert.equal(r.status, 502);
    assert.match(String(r.headers["l5d-err"]), /certificate has expired/);
    assert.ok((await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason)) > before, "counted on node a");
    figures.push({ expiredPeer: { status: r.status, l5dErr: r.headers["l5d-err"] } });
  });
});

/** The CA in `bundle` that the test PKI knows (the one in force after the rotation). */
async function findIssuer(bundle: string): Promise<TestCa> {
  for (const name of ["mesh-ca-2", "mesh-ca"]) {
    const path = join(mesh.pki.dir, name, "ca.crt");
    const cert = await readFile(path, "utf8").catch(() => "");
    if (cert !== "" && bundle.includes(cert.trim())) {
      return { name, dir: join(mesh.pki.dir, name), cert, key: await readFile(join(mesh.pki.dir, name, "ca.key"), "utf8") };
    }
  }
  throw new Error("no known CA in the bundle");
}
