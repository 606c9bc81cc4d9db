// Hostile and malformed input on each of node b's listeners (4140 plain HTTP,
// 4141 mutual TLS, 9990 admin), with node b's proxy running as its own process
// so its descriptors and memory can be read before and after. Each case must
// get a clear rejection (status, l5d-err), and afterwards the proxy still
// serves, holds no extra connections, and its memory is bounded.
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { connect as h2connect, constants as h2 } from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { h2Get, metric } from "../support/mesh-client";
import { httpGet } from "../support/net";
import { CONTINUATION, END_HEADERS, END_STREAM, HEADERS, RawH2, frame, requestBlock } from "./h2-raw";
import { fdCount, residentBytes, socketCount } from "../support/proc";
import { ProxyProcess } from "../support/proxy-process";
import { sleep, waitFor } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";
const HEADERS_TIMEOUT_MS = 1000;
const MAX_STREAMS = 16;

let mesh: MeshFixture;
let proc: ProxyProcess;
let dir: string;
let baseline: { fds: number; sockets: number; rss: number };

const tlsOpts = () => ({ ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key });

before(async () => {
  mesh = await MeshFixture.start();
  await mesh.nodes.b.proxy.shutdown();
  dir = await mkdtemp(join(tmpdir(), "ztr-bad-input-"));
  const path = join(dir, "config-b.yaml");
  await ProxyProcess.write(
    path,
    mesh.config(B, {
      limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, maxConcurrentStreams: MAX_STREAMS },
      log: { level: "warn" },
    }),
  );
  proc = new ProxyProcess("b", B, mesh.ports.admin, path);
  await proc.start();
  // Warm every path once so the baseline includes its lasting connections.
  assert.equal((await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world");
  assert.equal((await httpGet(B, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } })).body, "world");
  await sleep(300);
  baseline = { fds: fdCount(proc.pid), sockets: socketCount(proc.pid), rss: residentBytes(proc.pid) };
});

after(async () => {
  await proc?.kill();
  await mesh?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Sends raw bytes, returns everything the server wrote before closing (or "" on reset). */
function raw(port: number, bytes: string | Buffer, opts: { tls?: boolean; waitMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const onConnect = (): void => {
      s.write(bytes);
    };
    const s = opts.tls
      ? tlsConnect({ host: B, port, ...tlsOpts(), servername: IDENTITY, ALPNProtocols: ["http/1.1"] }, onConnect)
      : netConnect({ host: B, port }, onConnect);
    let out = "";
    s.on("data", (c: Buffer) => (out += c.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? resolve(out) : reject(e)));
    s.setTimeout(opts.waitMs ?? 10_000, () => s.destroy(new Error(`no close within ${opts.waitMs ?? 10_000} ms; got ${JSON.stringify(out.slice(0, 200))}`)));
  });
}

const LISTENERS = [
  { name: "outgoing 4140", port: () => mesh.ports.outgoing, tls: false, target: "http://world/" },
  { name: "incoming 4141 (TLS, mesh certificate)", port: () => mesh.ports.incoming, tls: true, target: "/" },
  { name: "admin 9990", port: () => mesh.ports.admin, tls: false, target: "/admin/ping" },
] as const;

/** Malformed or smuggling requests, with the status each must get. */
const MALFORMED: readonly { what: string; head: (target: string) => string; status: number }[] = [
  { what: "a garbage request line", head: () => "HELLO THERE\r\n\r\n", status: 400 },
  { what: "a header line without a colon", head: (t) => `GET ${t} HTTP/1.1\r\nHost: world\r\nNoColonHere\r\n\r\n`, status: 400 },
  { what: "obs-fold (a folded header line)", head: (t) => `GET ${t} HTTP/1.1\r\nHost: world\r\nX-A: one\r\n  two\r\n\r\n`, status: 400 },
  { what: "a bare CR inside a header value", head: (t) => `GET ${t} HTTP/1.1\r\nHost: world\r\nX-A: a\rb\r\n\r\n`, status: 400 },
  { what: "a bare CR ending the request line", head: (t) => `GET ${t} HTTP/1.1\rHost: world\r\n\r\n`, status: 400 },
  {
    what: "Content-Length and Transfer-Encoding together (CL.TE smuggling)",
    head: (t) => `POST ${t} HTTP/1.1\r\nHost: world\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: world\r\n\r\n`,
    status: 400,
  },
  {
    what: "two different Content-Lengths",
    head: (t) => `POST ${t} HTTP/1.1\r\nHost: world\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc`,
    status: 400,
  },
  {
    what: "a Transfer-Encoding that does not end in chunked (TE.CL smuggling)",
    head: (t) => `POST ${t} HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    what: "an obfuscated Transfer-Encoding header name",
    head: (t) => `POST ${t} HTTP/1.1\r\nHost: world\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc`,
    status: 400,
  },
  { what: "a negative Content-Length", head: (t) => `POST ${t} HTTP/1.1\r\nHost: world\r\nContent-Length: -1\r\n\r\n`, status: 400 },
  { what: "a request head past the header limit", head: (t) => `GET ${t} HTTP/1.1\r\nHost: world\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, status: 431 },
  {
    what: "a request head past the limit in many small headers",
    head: (t) => `GET ${t} HTTP/1.1\r\nHost: world\r\n${Array.from({ length: 2000 }, (_, i) => `X-${i}: ${"v".repeat(10)}\r\n`).join("")}\r\n`,
    status: 431,
  },
];

describe("malformed requests and request smuggling", () => {
  for (const l of LISTENERS) {
    for (const m of MALFORMED) {
      it(`${l.name}: ${m.what} gets ${m.status} and the connection is closed`, async () => {
        const reply = await raw(l.port(), m.head(l.target), { tls: l.tls });
        assert.match(reply, new RegExp(`^HTTP/1\\.1 ${m.status} `), `got ${JSON.stringify(reply.slice(0, 200))}`);
        assert.match(reply, /\r\nl5d-err: malformed request: [^\r]+\r\n/i, "the reason is named");
        assert.doesNotMatch(reply, /HTTP\/1\.1 200 /, "no second (smuggled) request was answered");
      });
    }
  }

  it("a chunked body with a bad chunk size is cut off and never completes at the app", async () => {
    const reply = await raw(
      mesh.ports.outgoing,
      "POST http://world/echo HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nmore\r\n0\r\n\r\n",
    );
    // The head was valid and forwarding began; the broken body must not be taken as complete.
    assert.doesNotMatch(reply, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nabcmore/);
  });

  it("a body shorter than its Content-Length is not forwarded as complete", async () => {
    const s = netConnect({ host: B, port: mesh.ports.outgoing });
    await new Promise((r) => s.once("connect", r));
    s.write("POST http://world/echo HTTP/1.1\r\nHost: world\r\nContent-Length: 100\r\n\r\nonly-ten!!");
    await sleep(200);
    s.destroy();
    // The proxy stays healthy and holds nothing for the aborted request.
    await waitFor("pending requests to drop to 0", async () => (await metric(B, mesh.ports.admin, "mesh_pending_requests", { listener: "outgoing" })) === 0, { timeoutMs: 15_000, detail: () => `; proxy output:\n${proc.output.slice(-3000)}` });
  });
});

describe("slow clients (slowloris)", () => {
  const CLIENTS = 40;

  for (const l of LISTENERS) {
    it(`${l.name}: ${CLIENTS} clients trickling a request head are answered 408 and disconnected`, async () => {
      const replies = await Promise.all(
        Array.from({ length: CLIENTS }, () =>
          new Promise<string>((resolve) => {
            const onConnect = (): void => {
              s.write(`GET ${l.target} HTTP/1.1\r\nHost: world\r\n`);
              // One more header byte every 200 ms, never finishing the head.
              const timer = setInterval(() => {
                if (!s.destroyed) s.write("X");
              }, 200);
              s.once("close", () => clearInterval(timer));
            };
            const s = l.tls
              ? tlsConnect({ host: B, port: l.port(), ...tlsOpts(), servername: IDENTITY, ALPNProtocols: ["http/1.1"] }, onConnect)
              : netConnect({ host: B, port: l.port() }, onConnect);
            let out = "";
            s.on("data", (c: Buffer) => (out += c.toString("latin1")));
            s.on("error", () => undefined);
            s.on("close", () => resolve(out));
            // Generous: the proxy's limit is 1 s (5 s on admin); this only bounds the test.
            s.setTimeout(45_000, () => s.destroy());
            setTimeout(() => s.destroy(), 45_000).unref();
          }),
        ),
      );
      for (const r of replies) assert.match(r, /^HTTP\/1\.1 408 /, `a slow client got ${JSON.stringify(r.slice(0, 100))}`);
    });
  }

  it("4141: clients that connect and never start the TLS handshake are dropped", async () => {
    const closed = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<boolean>((resolve) => {
          const s = netConnect({ host: B, port: mesh.ports.incoming });
          s.on("error", () => undefined);
          s.on("close", () => resolve(true));
          setTimeout(() => {
            s.destroy();
            resolve(false);
          }, 45_000).unref();
        }),
      ),
    );
    assert.ok(closed.every(Boolean), "every silent connection was closed by the proxy (limits.connectTimeoutMs)");
  });
});

describe("hostile l5d-dtab headers", () => {
  const chain = (n: number): string =>
    Array.from({ length: n }, (_, i) => `/l${i}=>/l${i + 1}|/l${i + 1}`).join(";") + `;/svc=>/l0`;
  const CASES: readonly { what: string; dtab: string; status: number; err: RegExp }[] = [
    { what: "too many dentries", dtab: Array.from({ length: 300 }, (_, i) => `/a${i}=>/b`).join(";"), status: 400, err: /more than 256 dentries/ },
    { what: "nesting 100 deep", dtab: `/svc=>${"(".repeat(100)}/x${")".repeat(100)}`, status: 400, err: /nesting deeper than 32/ },
    { what: "a name delegating to itself", dtab: "/svc/world=>/svc/world", status: 502, err: /delegation deeper than 32 .*loop/ },
    { what: "two names delegating to each other", dtab: "/svc=>/x;/x=>/svc", status: 502, err: /delegation deeper than 32 .*loop/ },
    { what: "alternatives that double at every step (2^30 paths)", dtab: chain(30), status: 502, err: /exceeded 1000 steps/ },
    { what: "unbalanced punctuation", dtab: "/svc=>/a)(|&;=>", status: 400, err: /^bad l5d-dtab header: .* at offset \d+/ },
  ];

  for (const c of CASES) {
    it(`4140: ${c.what} gets ${c.status} naming the problem`, async () => {
      const r = await httpGet(B, mesh.ports.outgoing, "http://world/", { headers: { host: "world", "l5d-dtab": c.dtab } });
      assert.equal(r.status, c.status);
      assert.match(String(r.headers["l5d-err"]), c.err);
    });

    it(`4141 (HTTP/2 peer): ${c.what} gets ${c.status} naming the problem`, async () => {
      const r = await h2Get(B, mesh.ports.incoming, "/", { ...tlsOpts(), headers: { ":authority": "world", "l5d-dtab": c.dtab } });
      assert.equal(r.status, c.status);
      assert.match(String(r.headers["l5d-err"]), c.err);
    });
  }

  it("4140: an l5d-dtab larger than the header limit gets 431", async () => {
    const big = Array.from({ length: 2000 }, (_, i) => `/a${i}=>/b`).join(";");
    const reply = await raw(mesh.ports.outgoing, `GET http://world/ HTTP/1.1\r\nHost: world\r\nl5d-dtab: ${big}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
  });

  it("2000 distinct hostile dtabs in a row cost no lasting memory (the parse cache is bounded)", async () => {
    const before = residentBytes(proc.pid);
    for (let i = 0; i < 2000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          httpGet(B, mesh.ports.outgoing, "http://world/", {
            headers: { host: "world", "l5d-dtab": `${"/x=>/y;".repeat(200)}/svc${i + j}=>(((/z` },
          }),
        ),
      );
    }
    const grown = (residentBytes(proc.pid) - before) / 1048576;
    assert.ok(grown < 64, `RSS grew ${grown.toFixed(1)} MiB`);
  });
});

describe("who may connect to 4141: old TLS versions", () => {
  for (const version of ["TLSv1", "TLSv1.1"] as const) {
    it(`refuses ${version} and counts it as protocol_version`, async () => {
      const reason = { side: "server", reason: "protocol_version" };
      const before = await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason);
      const err = await new Promise<Error | undefined>((resolve) => {
        const s = tlsConnect({
          host: B,
          port: mesh.ports.incoming,
          ...tlsOpts(),
          servername: IDENTITY,
          minVersion: version,
          maxVersion: version,
          ciphers: "DEFAULT@SECLEVEL=0",
        });
        s.once("secureConnect", () => {
          s.destroy();
          resolve(undefined);
        });
        s.once("error", resolve);
      });
      assert.ok(err !== undefined, `${version} handshake must fail`);
      await waitFor("the refusal to be counted", async () => (await metric(B, mesh.ports.admin, "mesh_tls_handshake_failures_total", reason)) > before);
    });
  }
});

describe("HTTP/2 abuse on 4141 by a client holding a mesh certificate", () => {
  it("rapid reset: 5000 streams opened and cancelled at once do not pile up work", async () => {
    const session = h2connect(`https://${B}:${mesh.ports.incoming}`, { ...tlsOpts(), servername: IDENTITY });
    session.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      session.once("connect", () => resolve());
      session.once("error", reject);
    });
    let opened = 0;
    for (let i = 0; i < 5000 && !session.closed && !session.destroyed; i++) {
      try {
        const s = session.request({ ":path": "/slow?ms=2000", ":authority": "world" });
        s.on("error", () => undefined);
        s.close(h2.NGHTTP2_CANCEL);
        opened++;
      } catch {
        break;
      }
      if (i % 500 === 0) await sleep(1);
    }
    await sleep(500);
    session.destroy();
    assert.ok(opened > 0);
    await waitFor("pending requests on 4141 to drop to 0", async () => (await metric(B, mesh.ports.admin, "mesh_pending_requests", { listener: "incoming" })) === 0, { timeoutMs: 20_000 });
  });

  it(`stream flood: streams past maxConcurrentStreams (${MAX_STREAMS}) are refused, not queued`, async () => {
    const conn = await RawH2.connect(B, mesh.ports.incoming, tlsOpts());
    const N = 400;
    const frames: Buffer[] = [];
    for (let i = 0; i < N; i++) frames.push(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, requestBlock("/slow?ms=1500")));
    conn.write(Buffer.concat(frames));
    await conn.settle(6000);
    conn.close();
    const refused = [...conn.tally.resets.values()].reduce((a, b) => a + b, 0);
    assert.ok(conn.tally.responses.size <= MAX_STREAMS || conn.tally.goaway !== undefined, `${conn.tally.responses.size} streams were answered`);
    assert.ok(refused > 0 || conn.tally.goaway !== undefined, "excess streams were reset or the session was ended");
    await waitFor("pending requests on 4141 to drop to 0", async () => (await metric(B, mesh.ports.admin, "mesh_pending_requests", { listener: "incoming" })) === 0, { timeoutMs: 20_000 });
  });

  it("a header block past maxHeaderBytes (across CONTINUATION frames) is refused", async () => {
    const conn = await RawH2.connect(B, mesh.ports.incoming, tlsOpts());
    const block = requestBlock("/", [["x-big", "a".repeat(60_000)]]);
    const parts: Buffer[] = [];
    for (let off = 0; off < block.length; off += 16_000) {
      const piece = block.subarray(off, off + 16_000);
      const last = off + 16_000 >= block.length;
      parts.push(frame(off === 0 ? HEADERS : CONTINUATION, (last ? END_HEADERS : 0) | (off === 0 ? END_STREAM : 0), 1, piece));
    }
    conn.write(Buffer.concat(parts));
    await conn.settle(5000);
    conn.close();
    // node:http2 answers a header list past maxHeaderListSize with 431 itself, before the proxy sees the request.
    const answer = conn.tally.responses.get(1);
    assert.ok(
      (answer !== undefined && answer.includes("431")) || conn.tally.resets.size > 0 || conn.tally.goaway !== undefined,
      `the oversized request must be refused (got ${JSON.stringify(answer)})`,
    );
  });

  it("CONTINUATION flood: a header block that never ends is cut off with bounded memory", async () => {
    const before = residentBytes(proc.pid);
    const conn = await RawH2.connect(B, mesh.ports.incoming, tlsOpts());
    conn.write(frame(HEADERS, END_STREAM, 1, requestBlock("/")));
    const filler = frame(CONTINUATION, 0, 1, Buffer.concat([Buffer.from([0x00]), Buffer.from([0x05]), Buffer.from("x-pad"), Buffer.from([0x7f, 0x81, 0x7f]), Buffer.alloc(16_382 - 8, 0x61)]).subarray(0, 16_000));
    let sent = 0;
    // Up to 64 MiB, stopping as soon as the proxy hangs up.
    for (let i = 0; i < 4096 && !conn.tally.closed; i++) {
      if (!conn.write(filler)) await new Promise((r) => setTimeout(r, 5));
      sent += filler.length;
      if (i % 64 === 0) await sleep(1);
    }
    await conn.settle(5000);
    conn.close();
    assert.ok(conn.tally.closed || conn.tally.goaway !== undefined, `the proxy still reads the header block after ${sent} bytes`);
    const grown = (residentBytes(proc.pid) - before) / 1048576;
    assert.ok(grown < 64, `RSS grew ${grown.toFixed(1)} MiB`);
  });

  it("a settings and ping flood ends the session instead of queueing replies", async () => {
    const conn = await RawH2.connect(B, mesh.ports.incoming, tlsOpts());
    const ping = frame(0x6, 0, 0, Buffer.alloc(8));
    const settings = frame(0x4, 0, 0, Buffer.from([0x00, 0x03, 0x00, 0x00, 0x00, 0x64]));
    // Never read by us: the socket's receive buffer fills, so the server's acks queue up.
    conn.socket.pause();
    for (let i = 0; i < 20_000 && !conn.tally.closed; i++) {
      conn.write(i % 2 === 0 ? ping : settings);
      if (i % 1000 === 0) await sleep(1);
    }
    conn.socket.resume();
    await conn.settle(5000);
    conn.close();
    const grown = (residentBytes(proc.pid) - baseline.rss) / 1048576;
    assert.ok(grown < 128, `RSS grew ${grown.toFixed(1)} MiB over the baseline`);
  });
});

describe("after all of it", () => {
  it("node b still serves the mesh path, holds no leaked descriptors, and its memory is bounded", async () => {
    const r = await httpGet(A, mesh.ports.outgoing, "http://world/", { headers: { host: "world" } });
    assert.equal(r.body, "world");
    const h = await httpGet(A, mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } });
    assert.equal(h.body, "Hello world");
    // Idle keep-alive connections to the app close after a few seconds.
    await waitFor(
      `node b's descriptors to return near the baseline (${baseline.fds})`,
      () => fdCount(proc.pid) <= baseline.fds + 4,
      { timeoutMs: 30_000, detail: () => `; now ${fdCount(proc.pid)} fds, ${socketCount(proc.pid)} sockets` },
    );
    const after = { fds: fdCount(proc.pid), sockets: socketCount(proc.pid), rssMiB: residentBytes(proc.pid) / 1048576 };
    const grown = after.rssMiB - baseline.rss / 1048576;
    console.log(
      `# node b after the bad-input suite: fds ${baseline.fds} -> ${after.fds}, sockets ${baseline.sockets} -> ${after.sockets}, ` +
        `RSS ${(baseline.rss / 1048576).toFixed(1)} -> ${after.rssMiB.toFixed(1)} MiB`,
    );
    assert.ok(grown < 128, `RSS grew ${grown.toFixed(1)} MiB`);
    assert.ok(proc.running, "the proxy process never crashed");
    assert.doesNotMatch(proc.output, /uncaught_exception|fatal/);
  });
});
