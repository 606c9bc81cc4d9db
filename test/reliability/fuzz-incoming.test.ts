// Fuzzing the incoming listener (4141), which test/proxy/fuzz.test.ts does not
// reach: fuzzed HTTP/2 requests from a client holding a mesh certificate (the
// peer path), and fuzzed raw HTTP/1.1 bytes over mutual TLS. Every request is
// answered with a status or a stream reset, the proxy never crashes, and it
// holds no requests once the fuzzing stops.
import assert from "node:assert/strict";
import { type ClientHttp2Session, connect as h2connect } from "node:http2";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { httpGet } from "../support/net";
import { waitFor } from "../support/wait";

const B = "127.0.0.3";
let mesh: MeshFixture;

before(async () => {
  mesh = await MeshFixture.start();
});
after(async () => {
  await mesh?.close();
});

const tls = () => ({ ca: mesh.ca.cert, cert: mesh.meshCert.cert, key: mesh.meshCert.key, servername: IDENTITY });
const dtabAlphabet = fc.constantFrom("/", "svc", "world", "#", "io.l5d.k8s", "default", "http", "=>", ";", "|", "&", "(", ")", "~", "!", "$", "*", " ", "1", "\\x41", "$/inet/127.0.0.3/1");
const dtab = fc.array(dtabAlphabet, { maxLength: 30 }).map((parts) => parts.join(""));
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });

describe("fuzzed HTTP/2 requests from a mesh peer on 4141", () => {
  let session: ClientHttp2Session;
  before(async () => {
    session = h2connect(`https://${B}:${mesh.ports.incoming}`, tls());
    session.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      session.once("connect", () => resolve());
      session.once("error", reject);
    });
  });
  after(() => session?.destroy());

  const request = fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "BREW", "G-T"),
    // Paths the test's own apps can parse (new URL() throws on some, which would crash the test, not the proxy).
    path: fc.oneof(fc.constantFrom("/", "/echo", "/headers", "/slow?ms=5", "*", "", "/%zz"), printable.map((p) => `/${p.replace(/^[/\\]+/, "")}`)),
    authority: fc.oneof(fc.constantFrom("world", "hello", "nope", "world:80", "[::1]:1", "", "WORLD", "a".repeat(300)), printable),
    dtab: fc.option(dtab, { nil: undefined }),
    via: fc.option(fc.constantFrom("1.1 zt-mesh", Array.from({ length: 10 }, () => "1.1 zt-mesh").join(", ")), { nil: undefined }),
    endpoint: fc.option(fc.constantFrom("127.0.0.3:1", "bogus", "127.0.0.2:80"), { nil: undefined }),
    body: fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
  });

  it("answers every request with a status or a reset, and keeps serving", async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = { ":method": r.method, ":path": r.path, ":authority": r.authority };
        if (r.dtab !== undefined) headers["l5d-dtab"] = r.dtab;
        if (r.via !== undefined) headers.via = r.via;
        if (r.endpoint !== undefined) headers["l5d-dst-endpoint"] = r.endpoint;
        let stream;
        try {
          stream = session.request(headers, { endStream: r.body === undefined });
        } catch {
          seen.set("not sent", (seen.get("not sent") ?? 0) + 1);
          return; // node's client refused to send it (invalid pseudo-header); nothing reached the proxy
        }
        const outcome = await new Promise<number | string>((resolve) => {
          let status = 0;
          stream.on("response", (h) => (status = Number(h[":status"])));
          stream.on("error", () => resolve(`reset ${stream.rstCode}`));
          stream.on("close", () => resolve(status === 0 ? `reset ${stream.rstCode}` : status));
          stream.resume();
          stream.setTimeout(10_000, () => stream.close());
          if (r.body !== undefined) stream.end(r.body);
        });
        seen.set(String(outcome), (seen.get(String(outcome)) ?? 0) + 1);
        if (typeof outcome === "number") assert.ok(outcome >= 100 && outcome < 600, `odd status ${outcome}`);
      }),
      { numRuns: 300 },
    );
    console.log(`# 4141 HTTP/2 fuzz outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.ok([...seen.keys()].some((k) => /^[2-5]\d\d$/.test(k)), "some requests were answered");
    assert.ok(!session.destroyed, "the peer session survived the fuzzing");
    const r = await httpGet("127.0.0.2", mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } });
    assert.equal(r.body, "Hello world");
    await waitFor("no request to be left pending on 4141", async () => (await metric(B, mesh.ports.admin, "mesh_pending_requests", { listener: "incoming" })) === 0);
  });
});

describe("fuzzed HTTP/1.1 bytes over mutual TLS on 4141", () => {
  const method = fc.constantFrom("GET", "POST", "PUT", "HEAD", "DELETE", "CONNECT", "OPTIONS", "G\x00T", "");
  const target = fc.oneof(fc.constantFrom("/", "/echo", "http://world/", "*", "world:80", "/%00"), fc.string({ unit: "binary-ascii", maxLength: 30 }));
  const header = fc.oneof(
    fc.constantFrom(
      "Host: world",
      "Host: ",
      "Content-Length: 5",
      "Content-Length: 5, 6",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: chunked, chunked",
      " folded: value",
      "l5d-dtab: /svc=>/#/io.l5d.k8s/default/http/world",
      "l5d-dtab: /svc=>((((",
      "Upgrade: h2c",
      "Connection: Upgrade, HTTP2-Settings",
      "Expect: 100-continue",
    ),
    fc.tuple(fc.stringMatching(/^[!-9;-~]{1,10}$/), fc.string({ unit: "binary-ascii", maxLength: 20 })).map(([k, v]) => `${k}: ${v}`),
  );
  const bytes = fc
    .tuple(method, target, fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/9.9", ""), fc.array(header, { maxLength: 5 }), fc.string({ maxLength: 30 }))
    .map(([m, t, v, hs, body]) => Buffer.from(`${m} ${t} ${v}\r\n${hs.join("\r\n")}\r\n\r\n${body}`, "latin1"));

  const send = (data: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tlsConnect({ host: B, port: mesh.ports.incoming, ...tls(), ALPNProtocols: ["http/1.1"] }, () => s.end(data));
      let out = "";
      s.on("data", (c: Buffer) => (out += c.toString("latin1")));
      s.on("close", () => resolve(out.split("\r\n")[0] ?? ""));
      s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? resolve("") : reject(e)));
      s.setTimeout(10_000, () => s.destroy(new Error("no answer within 10 s")));
    });

  it("answers every request with a status (or closes), and keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(bytes, async (data) => {
        const status = await send(data);
        if (status !== "") assert.match(status, /^HTTP\/1\.[01] [1-5]\d\d /, `odd answer ${JSON.stringify(status)}`);
      }),
      { numRuns: 200 },
    );
    const r = await httpGet("127.0.0.2", mesh.ports.outgoing, "http://world/", { headers: { host: "world" } });
    assert.equal(r.body, "world");
  });
});
