// Connection errors that are not TLS errors at all reach the handshake
// classifier too (a peer proxy that is down refuses the connection); they must
// map to a reason, not take the proxy down.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type Server as TlsServer, createServer as createTlsServer } from "node:tls";
import { carriesIdentity, classifyTlsError, classifyVerifyError } from "../../proxy/src/tls/peer-identity";
import { ENDPOINTSLICES, PODS, endpointSlice, meshPod } from "../support/fake-kube-api";
import { IDENTITY, MESH_LABELS, MeshFixture } from "../support/mesh";
import { httpsGet, metric } from "../support/mesh-client";
import { httpGet } from "../support/net";
import { sleep, waitFor } from "../support/wait";

describe("classifying failed peer connections", () => {
  for (const code of ["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EADDRNOTAVAIL", "SOMETHING_NEW"]) {
    it(`${code} is "other", without recursing`, () => {
      assert.equal(classifyTlsError(code, `connect ${code} 127.0.0.3:4141`), "other");
      assert.equal(classifyVerifyError(code), "other");
    });
  }

  it("still names verification failures", () => {
    assert.equal(classifyTlsError("CERT_HAS_EXPIRED", ""), "expired_certificate");
    assert.equal(classifyVerifyError("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "untrusted_certificate");
    assert.equal(classifyVerifyError("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "untrusted_certificate");
    assert.equal(classifyTlsError("ECONNRESET", ""), "connection_reset");
  });
});

// The identity is an exact DNS subjectAltName entry, on both sides of a peer
// connection: no CN fallback, no wildcard. Certificates from the mesh CA that
// carry it any other way are refused by 4141 and by the dialling proxy.
describe("the mesh identity must be an exact subjectAltName entry", () => {
  let mesh: MeshFixture;
  let rogue: TlsServer | undefined;
  const A = "127.0.0.2";
  const B = "127.0.0.3";
  const ROGUE = "127.0.0.6";
  const WILDCARD = `*.${IDENTITY.split(".").slice(1).join(".")}`;
  const certs = async () => ({
    cnOnly: await mesh.pki.leaf(mesh.ca, { dns: [], cn: IDENTITY }),
    wildcard: await mesh.pki.leaf(mesh.ca, { dns: [WILDCARD] }),
  });

  before(async () => {
    mesh = await MeshFixture.start();
  });
  after(async () => {
    rogue?.close();
    await mesh?.close();
  });

  it("carriesIdentity: an exact DNS entry only", async () => {
    const { cnOnly, wildcard } = await certs();
    assert.equal(carriesIdentity(new X509Certificate(mesh.meshCert.cert), IDENTITY), true);
    assert.equal(carriesIdentity(new X509Certificate(cnOnly.cert), IDENTITY), false, "CN only");
    assert.equal(carriesIdentity(new X509Certificate(wildcard.cert), IDENTITY), false, "wildcard only");
  });

  for (const which of ["cnOnly", "wildcard"] as const) {
    it(`4141 refuses a mesh-CA certificate with the identity ${which === "cnOnly" ? "only in its CN" : `only as ${WILDCARD}`}`, async () => {
      const pair = (await certs())[which];
      const reason = { side: "server", reason: "wrong_identity" };
      const before = await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason);
      await assert.rejects(httpsGet(B, mesh.ports.incoming, "/", { ca: mesh.ca.cert, ...pair, headers: { host: "world" } }));
      await waitFor("the refusal to be counted", async () => (await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason)) > before);
    });

    it(`the dialling proxy refuses a peer whose certificate has the identity ${which === "cnOnly" ? "only in its CN" : `only as ${WILDCARD}`}`, async () => {
      const pair = (await certs())[which];
      rogue?.close();
      let served = 0;
      rogue = createTlsServer({ ...pair, minVersion: "TLSv1.3", ALPNProtocols: ["h2"] }, (s) => {
        served++;
        s.destroy();
      });
      await new Promise<void>((r) => rogue!.listen(mesh.ports.incoming, ROGUE, () => r()));
      const node = which === "cnOnly" ? "rogue-cn" : "rogue-wildcard";
      mesh.api.upsert(PODS, meshPod("default", `l5d-${node}`, node, ROGUE, MESH_LABELS));
      mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", node, [{ name: "http", port: 8080 }], [{ ip: ROGUE, node }]));
      const reason = { side: "client", reason: "wrong_identity" };
      const before = await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason);
      let r = await httpGet(A, mesh.ports.outgoing, `http://${node}/`, { headers: { host: node } });
      const deadline = Date.now() + 10_000;
      while (/not found|no ready mesh proxy/.test(String(r.headers["l5d-err"])) && Date.now() < deadline) {
        await sleep(50);
        r = await httpGet(A, mesh.ports.outgoing, `http://${node}/`, { headers: { host: node } });
      }
      assert.equal(r.status, 502);
      assert.match(String(r.headers["l5d-err"]), /does not carry the mesh identity/);
      assert.ok((await metric(A, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason)) > before, "counted on node a");
      assert.equal(served, 0, "no request was handed to it");
    });
  }
});
