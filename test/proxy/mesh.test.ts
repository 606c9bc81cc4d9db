// The mesh path with real sockets and real TLS: two proxies on two loopback
// "nodes", discovery from an API server, hello on node a and world on node b.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { parseConfig } from "@zt-mesh/proxy-config";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { h2Get, httpsGet, metric } from "../support/mesh-client";
import { httpGet } from "../support/net";

const A = "127.0.0.2";
const B = "127.0.0.3";
const ADMIN_DTAB = "/svc=>/#/io.l5d.k8s/default/admin/l5d;";

let mesh: MeshFixture;

before(async () => {
  // Only node addresses (each proxy's HOST_IP) and 127.0.0.4 may re-route with l5d-dtab.
  mesh = await MeshFixture.start({ config: () => ({ outgoing: { dtabOverrideFrom: ["127.0.0.4/32"] } }) });
});

after(async () => {
  await mesh?.close();
});

/** A request to node a's outgoing listener, as an app with http_proxy=<node a>:4140 sends it. */
const viaA = (url: string, opts: Parameters<typeof httpGet>[3] = {}) => {
  const host = new URL(url).host;
  return httpGet(A, mesh.ports.outgoing, url, { localAddress: A, ...opts, headers: { host, ...opts.headers } });
};

describe("the hello/world walkthrough", () => {
  it("answers Hello world: hello on node a calls world on node b through both proxies", async () => {
    const r = await viaA("http://hello/");
    assert.equal(r.status, 200);
    assert.equal(r.body, "Hello world");
  });

  it("accepts origin-form requests with a Host header too", async () => {
    const r = await httpGet(A, mesh.ports.outgoing, "/", { headers: { host: "world" } });
    assert.equal(r.body, "world");
  });

  it("counts the requests by service, direction and status class on each proxy", async () => {
    await viaA("http://world/");
    const { admin } = mesh.ports;
    assert.ok((await metric(A, admin, "mesh_requests_total", { direction: "outgoing", service: "default/world", status_class: "2xx" })) >= 1);
    assert.ok((await metric(B, admin, "mesh_requests_total", { direction: "incoming", service: "default/world", status_class: "2xx" })) >= 1);
    assert.ok((await metric(B, admin, "mesh_request_duration_seconds_count", { direction: "incoming", service: "default/world" })) >= 1);
    assert.ok((await metric(B, admin, "mesh_certificate_expiry_timestamp_seconds", { certificate: "mesh" })) > Date.now() / 1000);
  });

  it("reuses one TLS connection per peer instead of a handshake per request", async () => {
    const before = await metric(A, mesh.ports.admin, "mesh_tls_handshakes_total", { side: "client" });
    await Promise.all(Array.from({ length: 20 }, () => viaA("http://world/")));
    assert.equal(await metric(A, mesh.ports.admin, "mesh_tls_handshakes_total", { side: "client" }), before);
  });
});

describe("bodies and headers", () => {
  it("streams a large chunked request body and its echo unchanged", async () => {
    const body = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const digest = await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: A, port: mesh.ports.outgoing, path: "http://world/echo", method: "POST", headers: { host: "world", "transfer-encoding": "chunked" }, localAddress: A },
        (res) => {
          const h = createHash("sha256");
          res.on("data", (c: Buffer) => h.update(c));
          res.on("end", () => resolve(h.digest("hex")));
        },
      );
      req.on("error", reject);
      for (let off = 0; off < body.length; off += 256 * 1024) req.write(body.subarray(off, off + 256 * 1024));
      req.end();
    });
    assert.equal(digest, createHash("sha256").update(body).digest("hex"));
  });

  it("streams a 32 MiB response", async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = request({ host: A, port: mesh.ports.outgoing, path: "http://world/bytes?n=33554432", headers: { host: "world" } }, (res) => {
        let n = 0;
        res.on("data", (c: Buffer) => (n += c.length));
        res.on("end", () => resolve(n));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(r, 32 * 1024 * 1024);
  });

  it("drops hop-by-hop headers, keeps end-to-end ones, and marks each mesh hop in Via", async () => {
    const r = await viaA("http://world/headers", {
      headers: { connection: "keep-alive, x-hop-secret", "x-hop-secret": "1", "keep-alive": "timeout=5", "x-app": "kept", "l5d-dst-endpoint": "10.9.9.9:1" },
    });
    const seen = JSON.parse(r.body) as Record<string, string>;
    assert.equal(seen["x-app"], "kept");
    assert.equal(seen["x-hop-secret"], undefined);
    assert.equal(seen["keep-alive"], undefined);
    assert.equal(seen["l5d-dst-endpoint"], undefined, "internal headers never reach the app");
    assert.equal(seen.via, "1.1 zt-mesh, 1.1 zt-mesh");
    assert.equal(seen.host, "world");
  });
});

describe("per-request routing with l5d-dtab", () => {
  it("reaches the proxy's own admin through 4141 with the mesh certificate: pong", async () => {
    const opts = { ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key, headers: { "l5d-dtab": ADMIN_DTAB } };
    const r = await httpsGet(B, mesh.ports.incoming, "/admin/ping", opts);
    assert.equal(r.status, 200);
    assert.equal(r.body, "pong");
    const r2 = await h2Get(B, mesh.ports.incoming, "/admin/ping", opts);
    assert.equal(r2.body, "pong", "peers speak HTTP/2 to the same port");
  });

  it("routes an app's override on 4140 through the mesh, and propagates it to the peer", async () => {
    const r = await viaA("http://anything/admin/ping", { headers: { "l5d-dtab": ADMIN_DTAB } });
    assert.equal(r.status, 200);
    assert.equal(r.body, "pong");
  });

  it("ignores l5d-dtab from a source that may not re-route", async () => {
    const before = await metric(A, mesh.ports.admin, "mesh_dtab_overrides_ignored_total");
    const r = await httpGet(A, mesh.ports.outgoing, "http://world/", {
      localAddress: "127.0.0.9",
      headers: { host: "world", "l5d-dtab": ADMIN_DTAB },
    });
    assert.equal(r.body, "world", "the override was not applied");
    assert.equal(await metric(A, mesh.ports.admin, "mesh_dtab_overrides_ignored_total"), before + 1);
  });

  it("answers a bad l5d-dtab with 400 naming the offending text", async () => {
    const r = await viaA("http://world/", { headers: { "l5d-dtab": "/svc=>/#/io.l5d.k8s/default/admin/l5d;/x=>(" } });
    assert.equal(r.status, 400);
    assert.match(String(r.headers["l5d-err"]), /^bad l5d-dtab header: expected a path, .* at offset \d+ near ""/);
    assert.equal(r.body.trim(), r.headers["l5d-err"]);
  });
});

describe("errors the proxy answers itself", () => {
  it("502 naming the name when there is no route", async () => {
    const r = await viaA("http://nope/");
    assert.equal(r.status, 502);
    assert.equal(r.headers["l5d-err"], "no route for /svc/nope: service default/nope not found");
  });

  it("502 naming the service when it has no ready endpoints", async () => {
    mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "empty", [{ name: "http", port: 80 }], []));
    const deadline = Date.now() + 3000;
    let r;
    do r = await viaA("http://empty/");
    while (r.headers["l5d-err"]?.includes("not found") && Date.now() < deadline);
    assert.equal(r.status, 502);
    assert.equal(r.headers["l5d-err"], "no endpoints for /svc/empty (/#/io.l5d.k8s/default/http/empty)");
  });

  it("502 naming the node when an endpoint's node has no mesh proxy", async () => {
    mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "orphan", [{ name: "http", port: 80 }], [{ ip: "127.0.0.7", node: "z" }]));
    const deadline = Date.now() + 3000;
    let r;
    do r = await viaA("http://orphan/");
    while (r.headers["l5d-err"]?.includes("not found") && Date.now() < deadline);
    assert.equal(r.status, 502);
    assert.match(String(r.headers["l5d-err"]), /no ready mesh proxy on node z for \/#\/io.l5d.k8s\/default\/http\/orphan/);
  });

  it("400 for a request that both chunks and declares a length (smuggling)", async () => {
    const reply = await rawRequest(
      A,
      mesh.ports.outgoing,
      "POST http://world/echo HTTP/1.1\r\nHost: world\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /l5d-err: malformed request: /);
  });

  it("431 for a request head over limits.maxHeaderBytes", async () => {
    const reply = await rawRequest(A, mesh.ports.outgoing, `GET http://world/ HTTP/1.1\r\nHost: world\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
    assert.match(reply, /l5d-err: malformed request: request head larger than limits.maxHeaderBytes/);
  });

  it("502 for a CONNECT to a name with no route, naming it", async () => {
    const reply = await rawRequest(A, mesh.ports.outgoing, "CONNECT nowhere:80 HTTP/1.1\r\nHost: nowhere:80\r\n\r\n");
    assert.match(reply, /^HTTP\/1\.1 502 /);
    assert.match(reply, /l5d-err: no route for \/svc\/nowhere/);
  });

  it("502 for a routing loop, detected from the Via hops", async () => {
    const via = Array.from({ length: 8 }, () => "1.1 zt-mesh").join(", ");
    const r = await viaA("http://world/", { headers: { via } });
    assert.equal(r.status, 502);
    assert.match(String(r.headers["l5d-err"]), /^routing loop: request for world has passed 8 mesh hops/);
  });

  it("504 when the response head does not come within limits.requestTimeoutMs", async () => {
    await withConfig("a", { limits: { requestTimeoutMs: 200 } }, async () => {
      const r = await viaA("http://world/slow?ms=1500");
      assert.equal(r.status, 504);
      assert.match(String(r.headers["l5d-err"]), /^timeout after 200 ms waiting for peer 127\.0\.0\.3:\d+/);
    });
  });

  it("503 when more than limits.maxPendingRequests are in flight", async () => {
    await withConfig("a", { limits: { maxPendingRequests: 1 } }, async () => {
      const slow = viaA("http://world/slow?ms=500");
      await new Promise((r) => setTimeout(r, 100));
      const shed = await viaA("http://world/");
      assert.equal(shed.status, 503);
      assert.match(String(shed.headers["l5d-err"]), /^shedding load: 1 requests in flight/);
      assert.equal((await slow).status, 200, "the request in flight is unaffected");
    });
  });
});

describe("who may connect to 4141", () => {
  const refused = async (reason: string, attempt: () => Promise<unknown>): Promise<void> => {
    const before = await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "server", reason });
    await assert.rejects(attempt(), "the request must not get an answer");
    const deadline = Date.now() + 2000;
    while ((await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", { side: "server", reason })) === before) {
      if (Date.now() > deadline) assert.fail(`no handshake failure counted with reason ${reason}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const ping = (opts: { cert?: string; key?: string; maxVersion?: "TLSv1.2" }) =>
    httpsGet(B, mesh.ports.incoming, "/admin/ping", { ca: mesh.ca.cert, ...opts, headers: { "l5d-dtab": ADMIN_DTAB } });

  it("refuses a client without a certificate", async () => {
    await refused("no_client_certificate", () => ping({}));
  });

  it("refuses a certificate from another CA", async () => {
    const rogueCa = await mesh.pki.ca("rogue-ca");
    const rogue = await mesh.pki.leaf(rogueCa, { dns: [IDENTITY] });
    await refused("untrusted_certificate", () => ping(rogue));
  });

  it("refuses an expired mesh certificate", async () => {
    const expired = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY], start: "20200101000000Z", end: "20200201000000Z" });
    await refused("expired_certificate", () => ping(expired));
  });

  it("refuses a mesh-CA certificate without the mesh identity", async () => {
    const other = await mesh.pki.leaf(mesh.ca, { dns: ["not-the-mesh.test.local"] });
    await refused("wrong_identity", () => ping(other));
  });

  it("refuses TLS 1.2", async () => {
    await refused("protocol_version", () => ping({ ...mesh.meshCert, maxVersion: "TLSv1.2" }));
  });

  it("refuses plaintext HTTP", async () => {
    await refused("not_tls", () => httpGet(B, mesh.ports.incoming, "/admin/ping", { headers: { host: "l5d" } }));
  });

  it("the outgoing proxy refuses a peer that is not a mesh member", async () => {
    // A server on node b's address that presents a certificate from another CA.
    const rogueCa = await mesh.pki.ca("rogue-server-ca");
    const rogue = await mesh.pki.leaf(rogueCa, { dns: [IDENTITY] });
    const tls = await import("node:tls");
    const server = tls.createServer({ ...rogue, minVersion: "TLSv1.3", ALPNProtocols: ["h2"] }, (s) => s.end());
    const port = await new Promise<number>((r) => server.listen(0, "127.0.0.5", () => r((server.address() as { port: number }).port)));
    try {
      const sock = tlsConnect({ host: "127.0.0.5", port, ca: mesh.ca.cert, servername: IDENTITY, ...mesh.meshCert });
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => sock.on("error", resolve));
      assert.match(String(err.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    } finally {
      server.close();
    }
  });
});

describe("certificate rotation", () => {
  it("picks up a re-issued certificate without failing requests in flight", async () => {
    const serialBefore = await peerSerial();
    let failures = 0;
    let done = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const rs = await Promise.all([viaA("http://world/"), viaA("http://world/slow?ms=300")]);
        for (const r of rs) (r.status === 200 ? done++ : failures++);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const reloadsBefore = await metric(B, mesh.ports.admin, "mesh_reloads_total", { what: "tls", result: "applied" });
    const renewed = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    await mesh.writeTls(mesh.ca.cert, renewed);
    const deadline = Date.now() + 5000;
    while ((await metric(B, mesh.ports.admin, "mesh_reloads_total", { what: "tls", result: "applied" })) === reloadsBefore) {
      if (Date.now() > deadline) assert.fail("proxy b did not reload the certificate");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 600));
    stop = true;
    await load;
    assert.equal(failures, 0, `${failures} of ${failures + done} requests failed during the reload`);
    assert.ok(done > 4);
    const serialAfter = await peerSerial();
    assert.notEqual(serialAfter, serialBefore, "new connections get the new certificate");
    assert.equal(serialAfter, new (await import("node:crypto")).X509Certificate(renewed.cert).serialNumber);
    mesh.meshCert = renewed;
  });

  it("keeps the old material when the new files do not fit together", async () => {
    const other = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY] });
    const rejectedBefore = await metric(B, mesh.ports.admin, "mesh_reloads_total", { what: "tls", result: "rejected" });
    await mesh.writeTls(mesh.ca.cert, { cert: other.cert, key: mesh.meshCert.key });
    const deadline = Date.now() + 5000;
    while ((await metric(B, mesh.ports.admin, "mesh_reloads_total", { what: "tls", result: "rejected" })) === rejectedBefore) {
      if (Date.now() > deadline) assert.fail("mismatched files were not reported");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await viaA("http://world/")).body, "world");
    await mesh.writeTls(mesh.ca.cert, mesh.meshCert);
  });
});

describe("logs", () => {
  it("are JSON lines with an event name, and never contain key or certificate material", () => {
    for (const node of Object.values(mesh.nodes)) {
      for (const line of node.logs) {
        const entry = JSON.parse(line) as { event?: unknown };
        assert.equal(typeof entry.event, "string");
        assert.doesNotMatch(line, /BEGIN|PRIVATE KEY/);
      }
    }
  });
});

async function withConfig(node: "a" | "b", extra: Parameters<MeshFixture["config"]>[1], fn: () => Promise<void>): Promise<void> {
  const n = mesh.nodes[node];
  const base = mesh.config(n.ip, { outgoing: { dtabOverrideFrom: ["127.0.0.4/32"] } });
  n.proxy.applyConfig(parseConfig({ ...base, ...extra, limits: { ...base.limits, ...extra?.limits } }));
  try {
    await fn();
  } finally {
    n.proxy.applyConfig(base);
  }
}

function rawRequest(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port }, () => s.write(text));
    let out = "";
    s.on("data", (c: Buffer) => (out += c.toString()));
    s.on("end", () => resolve(out));
    s.on("close", () => resolve(out));
    s.on("error", reject);
    s.setTimeout(5000, () => s.destroy(new Error("raw request timed out")));
  });
}

function peerSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: B, port: mesh.ports.incoming, ca: mesh.ca.cert, servername: IDENTITY, ...mesh.meshCert }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.destroy();
    });
    s.on("error", reject);
  });
}
