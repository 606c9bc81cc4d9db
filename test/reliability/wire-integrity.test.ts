// On the wire, an unfinished message never looks finished, what 4140 accepts
// the hop carries, and a peer reaches only Services on the node it calls.
// Two proxies in this process with real sockets and real TLS; the app on node
// b records, for every request, whether it arrived whole ('end') or was
// aborted, and how many bytes and headers it got.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { connect as h2connect, constants as h2 } from "node:http2";
import { type Socket, connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import type { ProxyConfigInput } from "@zt-mesh/proxy-config";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { httpsGet, metric } from "../support/mesh-client";
import { freePort } from "../support/net";
import { waitFor } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";
const REQUEST_TIMEOUT_MS = 1500;
const IDLE_MS = 1500;
const BASE: ProxyConfigInput = {
  limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS, peerSessionIdleTimeoutMs: IDLE_MS },
  ejection: { consecutiveFailures: 3, ejectMs: 30_000 },
};

interface Seen {
  readonly id: string;
  readonly method: string;
  readonly headerCount: number;
  bytes: number;
  /** 'end': the request arrived whole; 'aborted': it stopped before its end. */
  outcome: "pending" | "end" | "aborted";
}

/** The app on node b: records every request, and answers by path. */
class RecordingApp {
  readonly seen = new Map<string, Seen>();
  private server: Server | undefined;

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(this.port, B, () => r()));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  get count(): number {
    return this.seen.size;
  }

  async outcomeOf(id: string): Promise<Seen> {
    await waitFor(`the app to see request ${id} end or abort`, () => (this.seen.get(id)?.outcome ?? "pending") !== "pending", { timeoutMs: 10_000 });
    return this.seen.get(id)!;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const id = String(req.headers["x-req-id"] ?? `anon-${this.seen.size}`);
    const entry: Seen = { id, method: req.method ?? "", headerCount: req.rawHeaders.length / 2, bytes: 0, outcome: "pending" };
    this.seen.set(id, entry);
    req.on("data", (c: Buffer) => (entry.bytes += c.length));
    req.on("end", () => (entry.outcome = "end"));
    req.on("close", () => {
      if (entry.outcome === "pending") entry.outcome = "aborted";
    });
    const url = new URL(req.url ?? "/", "http://recorder");
    if (url.pathname === "/cut") {
      // The app dies in the middle of its response.
      const declared = url.searchParams.get("length");
      res.writeHead(200, declared === null ? { "content-type": "text/plain" } : { "content-length": declared });
      res.write("x".repeat(1000));
      setTimeout(() => res.socket?.destroy(), 100);
      return;
    }
    req.resume();
    req.on("end", () => {
      const text = `${req.method} ${entry.bytes} bytes ${entry.headerCount} headers`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  }
}

let mesh: MeshFixture;
let app: RecordingApp;
let seq = 0;
const nextId = (): string => `r${++seq}`;

before(async () => {
  mesh = await MeshFixture.start({ config: () => BASE });
  app = new RecordingApp(await freePort([B]));
  await app.start();
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "recorder", [{ name: "http", port: app.port }], [{ ip: B, node: "b" }]));
  await waitFor("the recorder service to be routable", async () => (await exchange(A, mesh.ports.outgoing, get("/", "warm"))).startsWith("HTTP/1.1 200 "));
});

after(async () => {
  await app?.stop();
  await mesh?.close();
});

const get = (path: string, id: string, extra = ""): string => `GET http://recorder${path} HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\n${extra}\r\n`;

/** Sends raw bytes and collects everything until the server closes (or `ms` passes). */
function exchange(host: string, port: number, bytes: string, opts: { tls?: boolean; ms?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const onConnect = (): void => void s.write(bytes);
    const s: Socket = opts.tls
      ? tlsConnect({ host, port, ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key, servername: IDENTITY, ALPNProtocols: ["http/1.1"] }, onConnect)
      : netConnect({ host, port }, onConnect);
    let out = "";
    s.on("data", (c: Buffer) => {
      out += c.toString("latin1");
      // One answer is enough unless the test waits for the close.
      if (opts.ms === undefined && /\r\n\r\n/.test(out) && /content-length: (\d+)/i.test(out)) {
        const len = Number(/content-length: (\d+)/i.exec(out)![1]);
        if (out.length - out.indexOf("\r\n\r\n") - 4 >= len) s.end();
      }
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve(out));
    s.setTimeout(opts.ms ?? 8000, () => s.destroy());
  });
}

/** Opens a raw connection to node a's 4140 and sends a request head and some body; the test decides how it ends. */
async function startUpload(head: string, body: string): Promise<{ socket: Socket; reply: () => string; closed: Promise<void> }> {
  const socket = netConnect({ host: A, port: mesh.ports.outgoing });
  await new Promise((r) => socket.once("connect", r));
  let out = "";
  socket.on("data", (c: Buffer) => (out += c.toString("latin1")));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  socket.write(head + body);
  return { socket, reply: () => out, closed };
}

const chunkedPost = (id: string): string =>
  `POST http://recorder/upload HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n`;

async function ejections(): Promise<number> {
  return (await metric(A, mesh.ports.admin, "mesh_ejections_total")) + (await metric(B, mesh.ports.admin, "mesh_ejections_total"));
}

describe("a request body cut off on its way is never delivered as complete", () => {
  it("the client resets its connection mid-body: the app sees the request aborted after the bytes sent", async () => {
    const id = nextId();
    const up = await startUpload(chunkedPost(id), "5\r\nhello\r\n");
    await waitFor("the app to receive the first chunk", () => (app.seen.get(id)?.bytes ?? 0) === 5);
    up.socket.resetAndDestroy();
    const seen = await app.outcomeOf(id);
    assert.equal(seen.outcome, "aborted");
    assert.equal(seen.bytes, 5);
  });

  it("the client closes its connection mid-body (Content-Length short): the app sees it aborted", async () => {
    const id = nextId();
    const head = `POST http://recorder/upload HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\nContent-Length: 100\r\n\r\n`;
    const up = await startUpload(head, "only-ten!!");
    await waitFor("the app to receive the first bytes", () => (app.seen.get(id)?.bytes ?? 0) === 10);
    up.socket.end();
    const seen = await app.outcomeOf(id);
    assert.equal(seen.outcome, "aborted");
    assert.equal(seen.bytes, 10);
  });

  for (const [what, bad] of [
    ["a malformed chunk after good data (3\\r\\nhello\\r\\n)", "3\r\nhello\r\n"],
    ["a chunk size that overflows", "ffffffffffffffffffff\r\nx\r\n"],
  ] as const) {
    it(`${what}: the client gets 400, the app sees the request aborted`, async () => {
      const id = nextId();
      const up = await startUpload(chunkedPost(id), "5\r\nhello\r\n");
      await waitFor("the app to receive the first chunk", () => (app.seen.get(id)?.bytes ?? 0) === 5);
      up.socket.write(bad);
      await up.closed;
      assert.match(up.reply(), /^HTTP\/1\.1 400 [\s\S]*l5d-err: malformed request: /);
      const seen = await app.outcomeOf(id);
      assert.equal(seen.outcome, "aborted");
    });
  }

  it("an upload slower than limits.requestTimeoutMs: 408 for the client, the app sees it aborted, no endpoint is blamed", async () => {
    const before = await ejections();
    for (let i = 0; i < 4; i++) {
      const id = nextId();
      const up = await startUpload(chunkedPost(id), "5\r\nhello\r\n");
      await up.closed;
      assert.match(up.reply(), /^HTTP\/1\.1 408 [\s\S]*l5d-err: request body not received within \d+ ms/);
      assert.doesNotMatch(up.reply(), /\r\n0\r\n\r\n$/);
      const seen = await app.outcomeOf(id);
      assert.equal(seen.outcome, "aborted");
      assert.equal(seen.bytes, 5);
    }
    assert.equal(await ejections(), before, "a slow client's timeouts eject nothing");
    assert.match(await exchange(A, mesh.ports.outgoing, get("/", nextId())), /^HTTP\/1\.1 200 /);
  });
});

describe("a response cut off by the app reaches the client cut off", () => {
  it("HTTP/1.1 chunked: the connection closes without the last chunk", async () => {
    const reply = await exchange(A, mesh.ports.outgoing, get("/cut", nextId()), { ms: 8000 });
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.match(reply, /transfer-encoding: chunked/i);
    assert.ok(reply.includes("x".repeat(1000)), "the bytes the app sent arrive");
    assert.doesNotMatch(reply, /\r\n0\r\n\r\n$/, "no terminating chunk");
  });

  it("HTTP/1.1 with Content-Length: the connection closes short of it", async () => {
    const reply = await exchange(A, mesh.ports.outgoing, get("/cut?length=5000", nextId()), { ms: 8000 });
    assert.match(reply, /^HTTP\/1\.1 200 [\s\S]*content-length: 5000/i);
    const body = reply.slice(reply.indexOf("\r\n\r\n") + 4);
    assert.equal(body.length, 1000);
  });

  it("HTTP/2 on 4141: the stream is reset, never ended", async () => {
    const session = h2connect(`https://${B}:${mesh.ports.incoming}`, { ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key, servername: IDENTITY });
    session.on("error", () => undefined);
    try {
      const stream = session.request({ ":path": "/cut", ":authority": "recorder", "x-req-id": nextId() });
      let bytes = 0;
      let ended = false;
      stream.on("data", (c: Buffer) => (bytes += c.length));
      stream.on("end", () => (ended = true));
      stream.on("error", () => undefined);
      await new Promise((r) => stream.once("close", r));
      assert.equal(bytes, 1000);
      assert.notEqual(stream.rstCode, h2.NGHTTP2_NO_ERROR, "RST_STREAM with an error code");
      assert.equal(ended, false, "no END_STREAM");
    } finally {
      session.destroy();
      mesh.nodes.b.proxy.applyConfig(mesh.config(B, BASE));
    }
  });
});

describe("what 4140 accepts the hop carries; what it cannot, 4140 refuses, and no endpoint is blamed", () => {
  it("150 headers of 100 bytes (under limits.maxHeaderBytes) reach the app, all of them", async () => {
    const id = nextId();
    const extra = Array.from({ length: 150 }, (_, i) => `x-h${String(i).padStart(3, "0")}: ${"v".repeat(90)}\r\n`).join("");
    const reply = await exchange(A, mesh.ports.outgoing, get("/", id, extra));
    assert.match(reply, /^HTTP\/1\.1 200 /);
    // The app also gets host, via and the test's x-req-id.
    assert.ok(app.seen.get(id)!.headerCount >= 152, `the app got ${app.seen.get(id)!.headerCount} headers`);
  });

  it("300 small headers: 431 at 4140, nothing reaches the app, ten of them eject nothing", async () => {
    const before = { ejections: await ejections(), app: app.count };
    const extra = Array.from({ length: 300 }, (_, i) => `x-${i}: a\r\n`).join("");
    for (let i = 0; i < 10; i++) {
      const reply = await exchange(A, mesh.ports.outgoing, get("/", nextId(), extra));
      assert.match(reply, /^HTTP\/1\.1 431 [\s\S]*l5d-err: request has more than 256 header fields \(limits\.maxHeaderCount\)/);
    }
    assert.equal(app.count, before.app);
    assert.equal(await ejections(), before.ejections);
    assert.match(await exchange(A, mesh.ports.outgoing, get("/", nextId())), /^HTTP\/1\.1 200 /, "the endpoint still serves");
  });

  it("a Host containing '@': 400 at 4140, nothing reaches the app, nothing is ejected", async () => {
    const before = { ejections: await ejections(), app: app.count };
    for (let i = 0; i < 5; i++) {
      const reply = await exchange(A, mesh.ports.outgoing, `GET / HTTP/1.1\r\nHost: a@recorder\r\nx-req-id: ${nextId()}\r\n\r\n`);
      assert.match(reply, /^HTTP\/1\.1 400 [\s\S]*l5d-err: malformed request: userinfo \(user@\) in the request's authority/);
    }
    assert.equal(app.count, before.app);
    assert.equal(await ejections(), before.ejections);
  });
});

describe("HTTP/1.1 edges (RFC 9112), on 4140 and on 4141", () => {
  const listeners = [
    { name: "4140", host: A, port: () => mesh.ports.outgoing, tls: false, target: "http://recorder/" },
    { name: "4141", host: B, port: () => mesh.ports.incoming, tls: true, target: "/" },
  ] as const;
  const CASES: readonly { what: string; bytes: (t: string, id: string) => string; status: number; err: RegExp }[] = [
    { what: "two Host headers", bytes: (t, id) => `GET ${t} HTTP/1.1\r\nHost: recorder\r\nHost: other\r\nx-req-id: ${id}\r\n\r\n`, status: 400, err: /more than one Host header/ },
    { what: "a request line without a version", bytes: (t, id) => `GET ${t}\r\nHost: recorder\r\nx-req-id: ${id}\r\n\r\n`, status: 400, err: /HTTP\/0\.9 request line/ },
    { what: "HTTP/0.9", bytes: (t, id) => `GET ${t} HTTP/0.9\r\nx-req-id: ${id}\r\n\r\n`, status: 400, err: /HTTP\/0\.9 request line/ },
    { what: "HTTP/2.0 in HTTP/1 framing", bytes: (t, id) => `GET ${t} HTTP/2.0\r\nHost: recorder\r\nx-req-id: ${id}\r\n\r\n`, status: 505, err: /HTTP\/2\.0 is not spoken in HTTP\/1 framing/ },
    {
      what: "HTTP/1.0 with Transfer-Encoding",
      bytes: (t, id) => `POST ${t} HTTP/1.0\r\nHost: recorder\r\nx-req-id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      status: 400,
      err: /Transfer-Encoding in an HTTP\/1\.0 request/,
    },
  ];
  for (const l of listeners) {
    for (const c of CASES) {
      it(`${l.name}: ${c.what} gets ${c.status} at once, and nothing reaches the app`, async () => {
        const id = nextId();
        const t0 = Date.now();
        const reply = await exchange(l.host, l.port(), c.bytes(l.target, id), { tls: l.tls });
        assert.match(reply, new RegExp(`^HTTP/1\\.1 ${c.status} `), JSON.stringify(reply.slice(0, 200)));
        assert.match(reply, /\r\nl5d-err: [^\r]+\r\n/);
        assert.match(reply.match(/\r\nl5d-err: ([^\r]+)\r\n/)![1]!, c.err);
        assert.ok(Date.now() - t0 < 3000, "answered without waiting for a timeout");
        assert.equal(app.seen.has(id), false);
      });
    }
    for (const method of ["PROPFIND", "PURGE"]) {
      it(`${l.name}: the extension method ${method} is forwarded`, async () => {
        const id = nextId();
        const reply = await exchange(l.host, l.port(), `${method} ${l.target} HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\n\r\n`, { tls: l.tls });
        assert.match(reply, /^HTTP\/1\.1 200 /);
        assert.equal(app.seen.get(id)?.method, method);
      });
    }
  }

  it("4140: userinfo in an absolute URI (http://a@b/) gets 400", async () => {
    const id = nextId();
    const reply = await exchange(A, mesh.ports.outgoing, `GET http://a@recorder/ HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 400 [\s\S]*l5d-err: malformed request: userinfo/);
    assert.equal(app.seen.has(id), false);
  });
});

describe("4141 forwards only to Services on its own node", () => {
  let bystander: Server;
  let hits = 0;
  let port = 0;
  before(async () => {
    // An address on node b that is no Service endpoint: what a peer must not reach.
    port = await freePort([B]);
    bystander = createServer((_req, res) => {
      hits++;
      res.end("reached");
    });
    await new Promise<void>((r) => bystander.listen(port, B, () => r()));
  });
  after(() => new Promise<void>((r) => bystander.close(() => r())));

  const tls = () => ({ ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key });

  it("a peer's l5d-dtab binding /$/inet is refused with 403 (HTTP/1.1 and HTTP/2), counted, and nothing is reached", async () => {
    const before = await metric(B, mesh.ports.admin, "mesh_incoming_address_refused_total");
    const dtab = `/svc=>/$/inet/${B}/${port};`;
    const r1 = await httpsGet(B, mesh.ports.incoming, "/", { ...tls(), headers: { host: "recorder", "l5d-dtab": dtab } });
    const r2 = await h2Request(B, mesh.ports.incoming, { ":path": "/", ":authority": "recorder", "l5d-dtab": dtab });
    const admin = await h2Request(B, mesh.ports.incoming, {
      ":path": "/admin/ping",
      ":authority": "x",
      "l5d-dtab": `/svc=>/$/inet/${B}/${mesh.ports.admin};`,
    });
    for (const r of [r1, r2, admin]) {
      assert.equal(r.status, 403);
      assert.match(String(r.headers["l5d-err"]), /is bound to the address \/\$\/inet\/127\.0\.0\.3\/\d+: the incoming listener forwards only to Services on node b/);
    }
    assert.equal(hits, 0, "the address was never reached");
    assert.equal(await metric(B, mesh.ports.admin, "mesh_incoming_address_refused_total"), before + 3);
  });
});

describe("request body size (limits.maxRequestBodyBytes)", () => {
  const LIMIT = 1000;
  const withLimit = async (fn: () => Promise<void>): Promise<void> => {
    const configs = { a: mesh.config(A, { ...BASE, limits: { ...BASE.limits, maxRequestBodyBytes: LIMIT } }), b: mesh.config(B, { ...BASE, limits: { ...BASE.limits, maxRequestBodyBytes: LIMIT } }) };
    mesh.nodes.a.proxy.applyConfig(configs.a);
    mesh.nodes.b.proxy.applyConfig(configs.b);
    try {
      await fn();
    } finally {
      mesh.nodes.a.proxy.applyConfig(mesh.config(A, BASE));
      mesh.nodes.b.proxy.applyConfig(mesh.config(B, BASE));
    }
  };

  it("a declared Content-Length past it gets 413 at once, before any body is sent", async () => {
    await withLimit(async () => {
      const id = nextId();
      const up = await startUpload(`POST http://recorder/upload HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`, "");
      await waitFor("the 413", () => /\r\n\r\n/.test(up.reply()), { timeoutMs: 3000 });
      up.socket.destroy();
      assert.match(up.reply(), /^HTTP\/1\.1 413 [\s\S]*l5d-err: request body of 1001 bytes is larger than limits\.maxRequestBodyBytes \(1000\)/);
      assert.equal(app.seen.has(id), false);
    });
  });

  it("a chunked body that grows past it is cut off: the client gets 413, the app sees the request aborted", async () => {
    await withLimit(async () => {
      const id = nextId();
      const up = await startUpload(chunkedPost(id), `200\r\n${"a".repeat(512)}\r\n`);
      await waitFor("the app to receive the first chunk", () => (app.seen.get(id)?.bytes ?? 0) === 512);
      up.socket.write(`200\r\n${"b".repeat(512)}\r\n`);
      await up.closed;
      assert.match(up.reply(), /^HTTP\/1\.1 413 [\s\S]*l5d-err: request body larger than limits\.maxRequestBodyBytes \(1000 bytes\)/);
      const seen = await app.outcomeOf(id);
      assert.equal(seen.outcome, "aborted");
      assert.ok(seen.bytes <= 1024, `the app got ${seen.bytes} bytes`);
    });
  });

  it("a body within it goes through whole", async () => {
    await withLimit(async () => {
      const id = nextId();
      const reply = await exchange(
        A,
        mesh.ports.outgoing,
        `POST http://recorder/upload HTTP/1.1\r\nHost: recorder\r\nx-req-id: ${id}\r\nContent-Length: ${LIMIT}\r\n\r\n${"c".repeat(LIMIT)}`,
      );
      assert.match(reply, /^HTTP\/1\.1 200 [\s\S]*POST 1000 bytes/);
      assert.equal((await app.outcomeOf(id)).outcome, "end");
    });
  });
});

describe("sessions on 4141", () => {
  it("a client without a certificate gets a certificate_required alert, and is counted", async () => {
    const reason = { side: "server", reason: "no_client_certificate" };
    const before = await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const s = tlsConnect({ host: B, port: mesh.ports.incoming, ca: mesh.ca.cert, servername: IDENTITY }, () => s.write("GET / HTTP/1.1\r\n\r\n"));
      s.once("error", resolve);
    });
    assert.equal(err.code, "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
    await waitFor("the refusal to be counted", async () => (await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason)) > before);
  });

  it(`an HTTP/2 session with no stream is closed (GOAWAY) after limits.peerSessionIdleTimeoutMs (${IDLE_MS} ms)`, async () => {
    const before = await metric(B, mesh.ports.admin, "mesh_peer_sessions_closed_total", { reason: "idle" });
    const session = h2connect(`https://${B}:${mesh.ports.incoming}`, { ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key, servername: IDENTITY });
    session.on("error", () => undefined);
    let goaway = -1;
    session.on("goaway", (code: number) => (goaway = code));
    const closed = new Promise((r) => session.once("close", r));
    const r = await streamOn(session, { ":path": "/", ":authority": "recorder" });
    assert.equal(r.status, 200);
    const t0 = Date.now();
    await closed;
    assert.equal(goaway, h2.NGHTTP2_NO_ERROR, "a graceful GOAWAY");
    assert.ok(Date.now() - t0 >= IDLE_MS - 200, "not before the idle timeout");
    assert.ok((await metric(B, mesh.ports.admin, "mesh_peer_sessions_closed_total", { reason: "idle" })) > before);
  });

  it("a session whose CA leaves the bundle is closed gracefully: its stream in flight finishes", async () => {
    const ca2 = await mesh.pki.ca("mesh-ca-wire");
    const peer = await mesh.pki.leaf(ca2, { dns: [IDENTITY] });
    await mesh.writeTls(mesh.ca.cert + ca2.cert, mesh.meshCert);
    await waitFor("node b to trust the second CA", async () => {
      const ok = await h2Request(B, mesh.ports.incoming, { ":path": "/", ":authority": "recorder" }, peer).catch(() => undefined);
      return ok?.status === 200;
    });
    const session = h2connect(`https://${B}:${mesh.ports.incoming}`, { ca: mesh.ca.cert, ...peer, servername: IDENTITY });
    session.on("error", () => undefined);
    let goaway = -1;
    session.on("goaway", (code: number) => (goaway = code));
    const closed = new Promise((r) => session.once("close", r));
    try {
      await streamOn(session, { ":path": "/", ":authority": "recorder" });
      const id = nextId();
      // A request in flight when the CA goes: its body follows after the reload.
      const stream = session.request({ ":method": "POST", ":path": "/upload", ":authority": "recorder", "x-req-id": id });
      stream.write("first ");
      await waitFor("the app to see the request", () => app.seen.has(id));
      const before = await metric(B, mesh.ports.admin, "mesh_peer_sessions_closed_total", { reason: "untrusted_certificate" });
      const t0 = Date.now();
      await mesh.writeTls(mesh.ca.cert, mesh.meshCert);
      await waitFor("the GOAWAY", () => goaway !== -1, { timeoutMs: 5000 });
      const goneAfter = Date.now() - t0;
      stream.end("second");
      const answer = await collect(stream);
      assert.equal(answer.status, 200);
      assert.match(answer.body, /^POST 12 bytes /, "the whole body reached the app");
      assert.equal((await app.outcomeOf(id)).outcome, "end");
      await closed;
      assert.equal(goaway, h2.NGHTTP2_NO_ERROR);
      assert.ok(goneAfter < 5000, `closed ${goneAfter} ms after the bundle changed`);
      assert.ok((await metric(B, mesh.ports.admin, "mesh_peer_sessions_closed_total", { reason: "untrusted_certificate" })) > before);
    } finally {
      session.destroy();
      await mesh.writeTls(mesh.ca.cert, mesh.meshCert);
    }
  });

  it("a session whose certificate expires is closed gracefully within tls.reloadIntervalMs", async () => {
    const soon = new Date(Date.now() + 4000);
    const opensslDate = soon.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
    const peer = await mesh.pki.leaf(mesh.ca, { dns: [IDENTITY], end: opensslDate });
    const notAfter = new X509Certificate(peer.cert).validToDate.getTime();
    // The stream below stays open across the expiry, longer than this suite's requestTimeoutMs.
    mesh.nodes.b.proxy.applyConfig(mesh.config(B, { ...BASE, limits: { ...BASE.limits, requestTimeoutMs: 30_000 } }));
    const session = h2connect(`https://${B}:${mesh.ports.incoming}`, { ca: mesh.ca.cert, ...peer, servername: IDENTITY });
    session.on("error", () => undefined);
    let goawayAt = 0;
    session.on("goaway", () => (goawayAt = Date.now()));
    try {
      assert.equal((await streamOn(session, { ":path": "/", ":authority": "recorder" })).status, 200);
      // Keep a stream open so the idle timeout is not what closes it.
      const stream = session.request({ ":method": "POST", ":path": "/upload", ":authority": "recorder" });
      stream.write("x");
      await waitFor("the GOAWAY", () => goawayAt !== 0, { timeoutMs: 15_000 });
      stream.end();
      assert.equal((await collect(stream)).status, 200, "the open stream finished");
      assert.ok(goawayAt >= notAfter - 1000, "not before the certificate expired");
      // reloadIntervalMs is 200 ms here; generous for a loaded machine.
      assert.ok(goawayAt - notAfter < 3000, `closed ${goawayAt - notAfter} ms after expiry`);
      assert.ok((await metric(B, mesh.ports.admin, "mesh_peer_sessions_closed_total", { reason: "expired_certificate" })) >= 1);
    } finally {
      session.destroy();
      mesh.nodes.b.proxy.applyConfig(mesh.config(B, BASE));
    }
  });
});

/** One HTTP/2 request on a fresh session to host:port with the mesh certificate (or `pair`). */
async function h2Request(
  host: string,
  port: number,
  headers: Record<string, string>,
  pair?: { cert: string; key: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const session = h2connect(`https://${host}:${port}`, { ca: mesh.ca.cert, ...(pair ?? mesh.meshCert), servername: IDENTITY });
  session.on("error", () => undefined);
  try {
    return await streamOn(session, headers);
  } finally {
    session.close();
  }
}

function streamOn(session: ReturnType<typeof h2connect>, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const stream = session.request(headers);
  return collect(stream);
}

function collect(stream: ReturnType<ReturnType<typeof h2connect>["request"]>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let head: Record<string, unknown> = {};
    let body = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = h;
    });
    stream.on("data", (c: Buffer) => (body += c.toString()));
    stream.on("end", () => resolve({ status, headers: head, body }));
    stream.on("error", reject);
    stream.on("close", () => reject(new Error(`stream closed without an end (code ${stream.rstCode})`)));
  });
}
