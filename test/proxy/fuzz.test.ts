// Property-based fuzzing of what the proxy parses from the outside: dtabs
// (config and l5d-dtab headers) and raw HTTP request bytes. The properties are
// what users rely on: bad input gets a clear rejection, never a crash, a hang
// or an unbounded cost, and the proxy keeps serving afterwards.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { DtabError, parseDtab, showDtab } from "@zt-mesh/proxy-config";
import { Resolver } from "../../proxy/src/routing/resolve";
import { MeshFixture } from "../support/mesh";
import { httpGet } from "../support/net";

const label = fc.stringMatching(/^[A-Za-z0-9_:.#$%-]{1,8}$/);
const path = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => "/" + ls.join("/"));
const tree: fc.Arbitrary<string> = fc.letrec<{ tree: string }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    path,
    fc.constantFrom("~", "!", "$"),
    fc.tuple(tie("tree"), tie("tree")).map(([a, b]) => `${a} | ${b}`),
    fc.tuple(fc.integer({ min: 1, max: 9 }), tie("tree"), tie("tree")).map(([w, a, b]) => `${w} * (${a}) & (${b})`),
    tie("tree").map((t) => `(${t})`),
  ),
})).tree;
const dentry = fc.tuple(path, tree).map(([p, t]) => `${p} => ${t}`);
const dtab = fc.array(dentry, { maxLength: 6 }).map((ds) => ds.join(";\n"));

describe("dtab parser under fuzzing", () => {
  it("rejects any text only with a DtabError that names an offset", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        try {
          parseDtab(text);
        } catch (err) {
          assert.ok(err instanceof DtabError, `unexpected ${String(err)}`);
          assert.match(err.message, /at offset \d+ near /);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("round-trips every well-formed dtab through printing", () => {
    fc.assert(
      fc.property(dtab, (text) => {
        const parsed = parseDtab(text);
        assert.deepEqual(parseDtab(showDtab(parsed)), parsed);
      }),
      { numRuns: 1000 },
    );
  });

  it("survives mutations of valid dtabs (truncation, inserted punctuation)", () => {
    fc.assert(
      fc.property(dtab, fc.nat(), fc.constantFrom("(", ")", "|", "&", "=>", ";", "*", "\\", "/", " "), (text, at, junk) => {
        const i = text.length === 0 ? 0 : at % text.length;
        for (const variant of [text.slice(0, i), text.slice(0, i) + junk + text.slice(i)]) {
          try {
            parseDtab(variant);
          } catch (err) {
            assert.ok(err instanceof DtabError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("reads the same dtab when every line ends in a # comment", () => {
    fc.assert(
      fc.property(dtab, fc.stringMatching(/^[^\n]{0,20}$/), (text, comment) => {
        const printed = showDtab(parseDtab(text));
        const commented = printed
          .split("\n")
          .map((line) => `${line} #${comment}`)
          .join("\n");
        assert.deepEqual(parseDtab(commented), parseDtab(printed));
      }),
      { numRuns: 500 },
    );
  });

  it("prints any weight so that the parser reads the same number back", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e300, noNaN: true }), (weight) => {
        const printed = showDtab([{ prefix: ["s"], dst: { kind: "union", branches: [{ weight, tree: { kind: "neg" } }] } }]);
        assert.doesNotMatch(printed, /e/i);
        const back = parseDtab(printed)[0]!.dst;
        assert.equal(back.kind === "union" ? back.branches[0]!.weight : 1, weight);
      }),
      { numRuns: 2000 },
    );
  });

  it("resolves any parsed dtab in bounded time", () => {
    const resolver = new Resolver(new Map());
    fc.assert(
      fc.property(dtab, path, (text, name) => {
        const started = performance.now();
        const r = resolver.resolve([parseDtab(text)], name.slice(1).split("/"));
        assert.ok(["bound", "empty", "error", "neg", "fail"].includes(r.kind));
        assert.ok(performance.now() - started < 250, "resolution is bounded");
      }),
      { numRuns: 1000 },
    );
  });
});

describe("the outgoing listener under fuzzed requests", () => {
  let mesh: MeshFixture;
  before(async () => {
    mesh = await MeshFixture.start();
  });
  after(async () => {
    await mesh?.close();
  });

  /** Sends raw bytes and returns the status line the proxy answered with ("" if it closed silently). */
  const send = (bytes: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.2", port: mesh.ports.outgoing }, () => s.end(bytes));
      let out = "";
      s.on("data", (c: Buffer) => (out += c.toString("latin1")));
      s.on("close", () => resolve(out.split("\r\n")[0] ?? ""));
      s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? resolve("") : reject(e)));
      s.setTimeout(5000, () => s.destroy(new Error("no answer within 5 s")));
    });

  const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "G\x00T", "", "CONNECT");
  const target = fc.oneof(
    fc.constantFrom("http://world/", "/", "*", "http://", "https://world/", "http://world:99999/", "world:80"),
    fc.string({ unit: "binary-ascii", maxLength: 40 }),
  );
  const header = fc.oneof(
    fc.constantFrom(
      "Host: world",
      "Content-Length: 5",
      "Content-Length: -1",
      "Content-Length: 1, 2",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: gzip, chunked",
      " folded: obs-fold",
      "l5d-dtab: /svc=>(",
      "l5d-dtab: /svc=>/#/io.l5d.k8s/default/admin/l5d",
      "Via: 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh, 1.1 zt-mesh",
      "Connection: close, Host",
      "Bad\rHeader: x",
    ),
    fc.tuple(fc.stringMatching(/^[!-9;-~]{1,12}$/), fc.string({ unit: "binary-ascii", maxLength: 30 })).map(([k, v]) => `${k}: ${v}`),
  );
  const request = fc
    .tuple(method, target, fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", ""), fc.array(header, { maxLength: 6 }), fc.string({ maxLength: 20 }))
    .map(([m, t, v, hs, body]) => Buffer.from(`${m} ${t} ${v}\r\n${hs.join("\r\n")}\r\n\r\n${body}`, "latin1"));

  it("answers every malformed or hostile request with a status (or closes), and keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        const status = await send(bytes);
        if (status !== "") assert.match(status, /^HTTP\/1\.[01] [1-5]\d\d /, `odd answer ${JSON.stringify(status)}`);
      }),
      { numRuns: 300 },
    );
    const r = await httpGet("127.0.0.2", mesh.ports.outgoing, "http://hello/", { headers: { host: "hello" } });
    assert.equal(r.body, "Hello world", "the proxy still serves after the fuzzing");
  });

  it("gives proxy-made errors an l5d-err reason", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/svc=>(", "/x", "=>", "/svc=>/a|", "/svc=>/a&"), async (bad) => {
        const r = await httpGet("127.0.0.2", mesh.ports.outgoing, "http://world/", {
          localAddress: "127.0.0.2",
          headers: { host: "world", "l5d-dtab": bad },
        });
        assert.equal(r.status, 400);
        assert.match(String(r.headers["l5d-err"]), /^bad l5d-dtab header: /);
      }),
      { numRuns: 20 },
    );
  });
});
