// linkerd 1 dtab rules end to end: an app on node a sends l5d-dtab overrides
// through its proxy to node b's proxy, and a recording backend on node b says
// what arrived. /$/fail and /$/nil, weighted unions with a failing share, and
// several l5d-dtab lines each read on their own and kept apart on every hop.
import assert from "node:assert/strict";
import { type IncomingMessage, type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { parseConfig } from "@zt-mesh/proxy-config";
import { parseDtab } from "@zt-mesh/proxy-config";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { MeshFixture } from "../support/mesh";
import { type Reply, freePort, httpGet } from "../support/net";

const A = "127.0.0.2";
const B = "127.0.0.3";

/** What the web-v1 app on node b received, one entry per request. */
interface Received {
  readonly dtabLines: readonly string[];
}

let mesh: MeshFixture;
let web: Server;
let webPort: number;
const received: Received[] = [];

before(async () => {
  mesh = await MeshFixture.start();
  const port = (webPort = await freePort([B]));
  web = createServer((req: IncomingMessage, res) => {
    const dtabLines: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() === "l5d-dtab") dtabLines.push(req.rawHeaders[i + 1]!);
    }
    received.push({ dtabLines });
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("web-v1");
  });
  await new Promise<void>((r) => web.listen(port, B, r));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "web-v1", [{ name: "http", port }], [{ ip: B, node: "b" }]));
  await untilBound(A, "outgoing");
  await untilBound(B, "incoming");
});

after(async () => {
  web?.closeAllConnections();
  await new Promise((r) => (web ? web.close(r) : r(undefined)));
  await mesh?.close();
});

/** Polls the explain endpoint until /svc/web-v1 binds to its endpoint on that proxy. */
async function untilBound(node: string, direction: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await httpGet(node, mesh.ports.admin, `/admin/delegate?path=/svc/web-v1&direction=${direction}`);
    const result = r.status === 200 ? (JSON.parse(r.body) as { result: { endpoints?: unknown[] } }).result : undefined;
    if (result?.endpoints?.length === 1) return;
    if (Date.now() > deadline) throw new Error(`web-v1 never bound on ${node}: ${r.body}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** A request from the app on node a, through its node's proxy. */
function fromApp(host: string, dtab: string | string[]): Promise<Reply> {
  return httpGet(A, mesh.ports.outgoing, `http://${host}/`, { localAddress: A, headers: { host, "l5d-dtab": dtab } });
}

describe("/$/fail and /$/nil through two proxies", () => {
  it("l5d-dtab /svc/web-v1 => /$/fail fails the request, and web-v1 receives nothing", async () => {
    const before = received.length;
    const r = await fromApp("web-v1", "/svc/web-v1 => /$/fail");
    assert.equal(r.status, 502);
    assert.match(String(r.headers["l5d-err"]), /^no route for \/svc\/web-v1: delegated to \/\$\/fail/);
    assert.equal(received.length, before);
  });

  it("/$/fail | /svc/web-v1 fails too: an explicit failure stops the alternatives", async () => {
    const before = received.length;
    const r = await fromApp("world", "/svc/world => /$/fail | /svc/web-v1");
    assert.equal(r.status, 502);
    assert.equal(received.length, before);
  });

  it("/$/nil | /svc/web-v1 binds to nothing and fails, as $ does", async () => {
    const before = received.length;
    const r = await fromApp("world", "/svc/world => /$/nil | /svc/web-v1");
    assert.equal(r.status, 502);
    assert.match(String(r.headers["l5d-err"]), /delegated to \/\$\/nil \(binds to nothing\)/);
    assert.equal(received.length, before);
  });
});

describe("weighted unions through two proxies", () => {
  it("9 * /svc/web-v1 & 1 * /$/nil fails about 10% of requests, chosen once for both hops", async () => {
    const dtab = "/svc/web => 9 * /svc/web-v1 & 1 * /$/nil";
    const before = received.length;
    let ok = 0;
    let failed = 0;
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => fromApp("web", dtab)));
      for (const r of replies) {
        if (r.status === 200 && r.body === "web-v1") ok++;
        else if (r.status === 502 && /\/\$\/nil/.test(String(r.headers["l5d-err"]))) failed++;
        else assert.fail(`unexpected ${r.status} ${r.body}`);
      }
    }
    // 400 requests at 10%: 40 expected; choosing again on node b would fail about 19% (76).
    assert.ok(failed >= 16 && failed <= 64, `${failed} of 400 failed`);
    assert.equal(received.length - before, ok, "every request that succeeded reached web-v1, no others");
    assert.ok(received.slice(before).every((r) => r.dtabLines[0] === dtab), "the override travelled with each request");
  });

  it("0 * /svc/web-v1 & ! sends every request to web-v1", async () => {
    const before = received.length;
    const replies = await Promise.all(Array.from({ length: 20 }, () => fromApp("web", "/svc/web => 0 * /svc/web-v1 & !")));
    assert.deepEqual(new Set(replies.map((r) => `${r.status} ${r.body}`)), new Set(["200 web-v1"]));
    assert.equal(received.length - before, 20);
  });
});

describe("several l5d-dtab lines through two proxies", () => {
  it("each line is read on its own and layered in order; the app receives the lines as sent", async () => {
    // Joined with ", " the comment on line 1 would swallow line 2, and world would answer.
    const lines = ["/svc/web => /svc/world # canary, rolled back", "/svc/web => /svc/web-v1"];
    const before = received.length;
    const r = await fromApp("web", lines);
    assert.equal(r.status, 200);
    assert.equal(r.body, "web-v1", "line 2 takes precedence over line 1");
    assert.equal(received.length, before + 1);
    assert.deepEqual(received[before]!.dtabLines, lines, "both hops kept the lines apart and in order");
  });

  it("a bad second line is a 400 naming it", async () => {
    const r = await fromApp("web", ["/svc/web => /svc/web-v1", "/svc/web => /#/io.l5d.consul/dc1"]);
    assert.equal(r.status, 400);
    assert.match(String(r.headers["l5d-err"]), /^bad l5d-dtab header \(line 2 of 2\): dentry 1 at offset 0 .*\/#\/io\.l5d\.consul is not a configured namer/);
  });
});

describe("GET /admin/dtab", () => {
  it("prints weights the parser reads back: no exponent notation", async () => {
    const node = mesh.nodes.a;
    const base = mesh.config(A);
    const dtab = "/svc => /#/io.l5d.k8s/default/http; /svc/tiny => 0.0000001 * /svc/web-v1 & 1000000000000000000000 * /svc/world;";
    node.proxy.applyConfig(parseConfig({ ...base, outgoing: { ...base.outgoing, dtab } }));
    try {
      const r = await httpGet(A, mesh.ports.admin, "/admin/dtab");
      const printed = (JSON.parse(r.body) as { outgoing: string }).outgoing;
      assert.match(printed, /0\.0000001 \* \/svc\/web-v1 & 1000000000000000000000 \* \/svc\/world/);
      assert.deepEqual(parseDtab(printed), parseDtab(dtab));
    } finally {
      node.proxy.applyConfig(base);
    }
  });
});

describe("GET /admin/delegate", () => {
  it("explains a resolution as JSON: steps, dentries, the tree and the endpoints", async () => {
    const dtab = encodeURIComponent("/svc/web => 9 * /svc/web-v1 & 1 * /$/nil # inject failures");
    const r = await httpGet(A, mesh.ports.admin, `/admin/delegate?path=/svc/web&dtab=${dtab}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    const body = JSON.parse(r.body) as {
      steps: { path: string; dentry?: string; table?: string }[];
      result: { kind: string; branches: { share: number; result: { kind: string; endpoints?: { address: string; node: string }[] } }[] };
    };
    assert.deepEqual(body.steps[0], {
      depth: 0,
      path: "/svc/web",
      dentry: "/svc/web => 9 * /svc/web-v1 & /$/nil;",
      table: "override",
      index: 1,
      tree: "9 * /svc/web-v1 & /$/nil",
      outcome: "union of 2 branches",
    });
    assert.equal(body.result.kind, "union");
    assert.deepEqual(body.result.branches[0]!.result.endpoints, [{ address: `${B}:${webPort}`, node: "b" }]);
    assert.deepEqual(body.result.branches.map((b) => [b.share, b.result.kind]), [
      [0.9, "bound"],
      [0.1, "empty"],
    ]);
  });

  it("answers a bad query with 400 and the reason in l5d-err", async () => {
    const r = await httpGet(A, mesh.ports.admin, `/admin/delegate?path=/svc/web&dtab=${encodeURIComponent("/svc=>(")}`);
    assert.equal(r.status, 400);
    assert.match(String(r.headers["l5d-err"]), /^bad l5d-dtab header: expected a path/);
    assert.equal(r.body.trim(), r.headers["l5d-err"]);
  });
});
