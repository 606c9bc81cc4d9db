// CONNECT tunnels: an app on node a asks its proxy for `CONNECT echo:<port>`,
// the tunnel crosses to node b's proxy as an HTTP/2 CONNECT stream on the
// mutual-TLS connection, and node b's proxy connects to the endpoint. What the
// app at the far end received (bytes, and whether it saw an end or a reset) is
// recorded and checked, as is what the client saw.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { type Server, type Socket, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { ServiceLookup } from "../../proxy/src/discovery/endpoint-index";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { MeshFixture } from "../support/mesh";
import { metric } from "../support/mesh-client";
import { freePort } from "../support/net";
import { residentBytes } from "../support/proc";
import { sleep, waitFor } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";
const IDLE_MS = 1500;
const BIG = 64 * 1024 * 1024;

/** What the app behind the tunnel saw on one connection. */
interface Seen {
  bytes: number;
  digest: string;
  ending: "pending" | "end" | "reset";
}

type Mode = "echo" | "late-writer" | "download" | "reset-after-first-bytes";

/** TCP apps on node b, one port per behaviour, recording each connection. */
class TcpApps {
  readonly seen: Seen[] = [];
  readonly ports = new Map<Mode, number>();
  private readonly servers: Server[] = [];

  async start(): Promise<void> {
    for (const mode of ["echo", "late-writer", "download", "reset-after-first-bytes"] as const) {
      const port = await freePort([B]);
      const server = createServer({ allowHalfOpen: true }, (s) => this.serve(mode, s));
      await new Promise<void>((r) => server.listen(port, B, r));
      this.servers.push(server);
      this.ports.set(mode, port);
    }
  }

  private serve(mode: Mode, s: Socket): void {
    const seen: Seen = { bytes: 0, digest: "", ending: "pending" };
    this.seen.push(seen);
    const hash = createHash("sha256");
    s.on("data", (c: Buffer) => {
      seen.bytes += c.length;
      hash.update(c);
      if (mode === "reset-after-first-bytes") s.resetAndDestroy();
    });
    s.on("end", () => {
      seen.ending = "end";
      seen.digest = hash.digest("hex");
      if (mode === "late-writer") setTimeout(() => s.end("written after your end"), 100);
    });
    s.on("error", () => (seen.ending = "reset"));
    if (mode === "echo") s.pipe(s);
    // A plain TCP server that answers one HTTP/1.1 request with 64 MiB, for curl.
    if (mode === "download") {
      let head = "";
      const onHead = (c: Buffer): void => {
        head += c.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        s.off("data", onHead);
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${BIG}\r\nconnection: close\r\n\r\n`);
        s.end(pattern(BIG));
      };
      s.on("data", onHead);
    }
  }

  async close(): Promise<void> {
    for (const s of this.servers) await new Promise((r) => s.close(r));
  }
}

/** Deterministic bytes, so a digest says whether every byte arrived in order. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(i * 2654435761 >>> 0, i);
  return b;
}

const endpointCount = (l: ServiceLookup): number => ("endpoints" in l ? l.endpoints.length : 0);

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

let mesh: MeshFixture;
const apps = new TcpApps();
const echoOnA = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
/** A WebSocket app on node b: echoes each message, and refuses a client without its token. */
let chat: WebSocketServer;
const chatUpgrades: Record<string, string | string[] | undefined>[] = [];

before(async () => {
  await apps.start();
  const dtab = "/svc => /#/io.l5d.k8s/default/http; /svc/echo => /#/io.l5d.k8s/default/tcp/echo; /svc/late => /#/io.l5d.k8s/default/tcp/late; " +
    "/svc/download => /#/io.l5d.k8s/default/tcp/download; /svc/resetter => /#/io.l5d.k8s/default/tcp/resetter; /svc/split => /#/io.l5d.k8s/default/tcp/split;";
  mesh = await MeshFixture.start({
    config: () => ({ outgoing: { dtab }, incoming: { dtab }, limits: { tunnelIdleTimeoutMs: IDLE_MS } }),
  });
  const onB = [{ ip: B, node: "b" }];
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "echo", [{ name: "tcp", port: apps.ports.get("echo")! }], onB));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "late", [{ name: "tcp", port: apps.ports.get("late-writer")! }], onB));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "download", [{ name: "tcp", port: apps.ports.get("download")! }], onB));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "resetter", [{ name: "tcp", port: apps.ports.get("reset-after-first-bytes")! }], onB));
  // Two endpoints of one Service: node b's refuses connections, node a's echoes.
  const dead = await freePort([B]);
  await new Promise<void>((r) => echoOnA.listen(0, A, r));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "split", [{ name: "tcp", port: dead }], onB, "split-b"));
  mesh.api.upsert(
    ENDPOINTSLICES,
    endpointSlice("default", "split", [{ name: "tcp", port: (echoOnA.address() as { port: number }).port }], [{ ip: A, node: "a" }], "split-a"),
  );
  const chatPort = await freePort([B]);
  chat = new WebSocketServer({
    host: B,
    port: chatPort,
    verifyClient: (info: { req: { headers: Record<string, string | string[] | undefined> } }) => {
      chatUpgrades.push(info.req.headers);
      return info.req.headers["x-token"] === "let-me-in";
    },
  });
  chat.on("connection", (ws) => ws.on("message", (data: RawData, binary: boolean) => ws.send(data, { binary })));
  await new Promise<void>((r) => chat.once("listening", r));
  mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "chat", [{ name: "http", port: chatPort }], onB));
  for (const node of Object.values(mesh.nodes)) {
    await waitFor("the tunnel Services in discovery", () =>
      endpointCount(node.proxy.index.lookup("default", "http", "chat")) === 1 &&
      ["echo", "late", "download", "resetter"].every((s) => endpointCount(node.proxy.index.lookup("default", "tcp", s)) === 1) &&
      endpointCount(node.proxy.index.lookup("default", "tcp", "split")) === 2,
    );
  }
});

after(async () => {
  await mesh?.close();
  await apps.close();
  await new Promise((r) => echoOnA.close(r));
  await new Promise((r) => chat?.close(r));
});

interface Tunnel {
  readonly socket: Socket;
  /** The proxy's answer to the CONNECT, head only. */
  readonly head: string;
}

/** Sends CONNECT to node a's outgoing listener, as an app with http_proxy set does, and reads the answer's head. */
function openTunnel(target: string, extraHead = ""): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: A, port: mesh.ports.outgoing, localAddress: A, allowHalfOpen: true }, () =>
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extraHead}\r\n`),
    );
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ socket, head: buf.subarray(0, end).toString() });
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

/** Everything the tunnel's far side sends until it ends, and how it ended. */
function readAll(socket: Socket): Promise<{ data: Buffer; ending: "end" | "reset" | "close" }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ending: "end" | "reset" | "close" = "close";
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.once("end", () => {
      ending = "end";
      socket.end();
    });
    socket.once("error", () => (ending = "reset"));
    socket.once("close", () => resolve({ data: Buffer.concat(chunks), ending }));
  });
}

const tunnelMetric = (ip: string, name: string, labels: Record<string, string> = {}) => metric(ip, mesh.ports.admin, name, labels);

describe("a CONNECT tunnel through two proxies", () => {
  it("answers 200 Connection established, then carries bytes both ways, and each side's end reaches the other", async () => {
    const before = apps.seen.length;
    const t = await openTunnel("echo:7");
    assert.match(t.head, /^HTTP\/1\.1 200 Connection established/);
    const reply = readAll(t.socket);
    t.socket.end("hello through the mesh");
    const { data, ending } = await reply;
    assert.equal(data.toString(), "hello through the mesh");
    assert.equal(ending, "end", "the app's end reached the client as an end");
    const seen = apps.seen[before]!;
    assert.equal(seen.ending, "end", "the client's end reached the app as an end");
    assert.equal(seen.bytes, "hello through the mesh".length);
  });

  it("keeps the other direction open after one side ends (half-close)", async () => {
    const t = await openTunnel("late:9");
    const reply = readAll(t.socket);
    t.socket.end("done sending");
    const { data, ending } = await reply;
    assert.equal(data.toString(), "written after your end");
    assert.equal(ending, "end");
  });

  it("passes on bytes the client sent right behind the CONNECT head", async () => {
    const before = apps.seen.length;
    const socket = connect({ host: A, port: mesh.ports.outgoing, localAddress: A, allowHalfOpen: true });
    const all = readAll(socket);
    socket.end("CONNECT echo:7 HTTP/1.1\r\nHost: echo:7\r\n\r\neager bytes");
    const { data } = await all;
    assert.match(data.toString(), /^HTTP\/1\.1 200 Connection established\r\n\r\neager bytes$/);
    assert.equal(apps.seen[before]!.bytes, "eager bytes".length);
  });

  it("counts the tunnel on both proxies: open while it lasts, bytes each way, and its ending", async () => {
    const labels = { direction: "outgoing", service: "default/echo" };
    const sentBefore = await tunnelMetric(A, "mesh_tunnel_bytes_total", { ...labels, flow: "from_client" });
    const backBefore = await tunnelMetric(A, "mesh_tunnel_bytes_total", { ...labels, flow: "to_client" });
    const t = await openTunnel("echo:7");
    await waitFor("the tunnel counted as open on both nodes", async () =>
      (await tunnelMetric(A, "mesh_tunnels_open", labels)) === 1 &&
      (await tunnelMetric(B, "mesh_tunnels_open", { direction: "incoming", service: "default/echo" })) === 1,
    );
    const reply = readAll(t.socket);
    t.socket.end("12345");
    await reply;
    await waitFor("the tunnel counted as closed", async () => (await tunnelMetric(A, "mesh_tunnels_open", labels)) === 0);
    assert.equal((await tunnelMetric(A, "mesh_tunnel_bytes_total", { ...labels, flow: "from_client" })) - sentBefore, 5);
    assert.equal((await tunnelMetric(A, "mesh_tunnel_bytes_total", { ...labels, flow: "to_client" })) - backBefore, 5);
    assert.ok((await tunnelMetric(B, "mesh_tunnel_duration_seconds_count", { direction: "incoming", service: "default/echo", ending: "closed" })) >= 1);
  });

  it("carries 64 MiB each way byte for byte, with the proxies' memory bounded", async () => {
    const before = apps.seen.length;
    const payload = pattern(BIG);
    const rssBefore = residentBytes();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, residentBytes())), 20);
    try {
      const t = await openTunnel("echo:7");
      const reply = readAll(t.socket);
      t.socket.end(payload);
      const { data, ending } = await reply;
      assert.equal(ending, "end");
      assert.equal(data.length, BIG);
      assert.equal(sha256(data), sha256(payload));
      assert.equal(apps.seen[before]!.digest, sha256(payload), "the app received every byte, in order");
    } finally {
      clearInterval(sampler);
    }
    // The test itself holds the payload and the echo; relayed bytes beyond
    // that would mean a hop buffered the stream instead of slowing its writer.
    const grown = rssPeak - rssBefore;
    assert.ok(grown < 3 * BIG, `resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  });

  it("works for curl -p (an HTTP request tunnelled with CONNECT): 64 MiB from a plain TCP server, byte for byte", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zt-mesh-tunnel-"));
    try {
      const out = join(dir, "out");
      await promisify(execFile)("curl", ["-sS", "--max-time", "60", "-p", "-x", `http://${A}:${mesh.ports.outgoing}`, "-o", out, "http://download:8080/"]);
      assert.equal(sha256(await readFile(out)), sha256(pattern(BIG)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reaches the client as a reset when the app resets, never as an end", async () => {
    const t = await openTunnel("resetter:1");
    const reply = readAll(t.socket);
    t.socket.write("anything");
    const { ending } = await reply;
    assert.equal(ending, "reset");
  });

  it("reaches the app as a reset when the client resets, never as an end", async () => {
    const before = apps.seen.length;
    const t = await openTunnel("echo:7");
    t.socket.write("partial");
    await waitFor("the app connected", () => apps.seen.length > before && apps.seen[before]!.bytes === 7);
    t.socket.resetAndDestroy();
    await waitFor("the app saw the connection end", () => apps.seen[before]!.ending !== "pending");
    assert.equal(apps.seen[before]!.ending, "reset");
  });

  it("resets a tunnel with no byte either way for limits.tunnelIdleTimeoutMs, at both ends, and counts it as idle", async () => {
    const before = apps.seen.length;
    const idleBefore = await tunnelMetric(A, "mesh_tunnel_duration_seconds_count", { direction: "outgoing", ending: "idle" });
    const t = await openTunnel("echo:7");
    const started = Date.now();
    const { ending } = await readAll(t.socket);
    const lasted = Date.now() - started;
    assert.equal(ending, "reset");
    assert.ok(lasted >= IDLE_MS - 100 && lasted < IDLE_MS + 3000, `closed after ${lasted} ms`);
    await waitFor("the app saw it end", () => apps.seen[before]?.ending === "reset");
    assert.equal((await tunnelMetric(A, "mesh_tunnel_duration_seconds_count", { direction: "outgoing", ending: "idle" })) - idleBefore, 1);
  });

  it("goes to another endpoint when one refuses the connection: nothing was sent, so any tunnel may be retried", async () => {
    const retriesBefore = await tunnelMetric(A, "mesh_retries_total");
    for (let i = 0; i < 6; i++) {
      const t = await openTunnel("split:7");
      assert.match(t.head, /^HTTP\/1\.1 200 /);
      const reply = readAll(t.socket);
      t.socket.end(`try ${i}`);
      assert.equal((await reply).data.toString(), `try ${i}`);
    }
    assert.ok((await tunnelMetric(A, "mesh_retries_total")) > retriesBefore, "the refused endpoint was tried and the tunnel retried");
  });
});

describe("a CONNECT the mesh refuses", () => {
  it("400 for a target that is not host:port, naming it", async () => {
    const t = await openTunnel("echo");
    assert.match(t.head, /^HTTP\/1\.1 400 /);
    assert.match(t.head, /l5d-err: malformed request: a CONNECT target is host:port, got "echo"/);
  });

  it("502 for a name that binds nothing, with l5d-err naming it", async () => {
    const t = await openTunnel("nothing-here:80");
    assert.match(t.head, /^HTTP\/1\.1 502 /);
    assert.match(t.head, /l5d-err: no route for \/svc\/nothing-here/);
  });

  it("a tunnel that was answered with an error is closed, and nothing reached an app", async () => {
    const before = apps.seen.length;
    const t = await openTunnel("nothing-here:80");
    const { ending } = await readAll(t.socket);
    assert.notEqual(ending, "reset");
    await sleep(50);
    assert.equal(apps.seen.length, before);
  });
});

/** A WebSocket client whose connection goes to node a's outgoing listener, as through http_proxy. */
function chatClient(token: string): WebSocket {
  return new WebSocket("ws://chat/room", {
    headers: { "x-token": token },
    createConnection: () => connect({ host: A, port: mesh.ports.outgoing, localAddress: A }),
  });
}

describe("a WebSocket through two proxies", () => {
  it("upgrades with the app's own 101, then carries messages both ways and the closing handshake", async () => {
    const seenBefore = chatUpgrades.length;
    const ws = chatClient("let-me-in");
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const received: string[] = [];
    ws.on("message", (data: RawData) => received.push(data.toString()));
    for (const text of ["one", "two", "x".repeat(200_000)]) ws.send(text);
    await waitFor("the echoes", () => received.length === 3);
    assert.deepEqual(received.map((r) => r.slice(0, 10)), ["one", "two", "x".repeat(10)]);
    assert.equal(received[2]!.length, 200_000);
    const code = await new Promise<number>((resolve) => {
      ws.once("close", (c: number) => resolve(c));
      ws.close(1000, "bye");
    });
    assert.equal(code, 1000, "the closing handshake went through both ways");
    const headers = chatUpgrades[seenBefore]!;
    assert.equal(headers.host, "chat");
    assert.match(String(headers.via), /zt-mesh/, "the app sees the mesh hop in Via");
    assert.equal(headers["upgrade"], "websocket");
  });

  it("passes the app's refusal of the upgrade to the client as it was", async () => {
    const ws = chatClient("wrong");
    const status = await new Promise<number>((resolve, reject) => {
      ws.once("unexpected-response", (_req: unknown, res: { statusCode?: number }) => resolve(res.statusCode ?? 0));
      ws.once("open", () => reject(new Error("the upgrade was accepted")));
      ws.once("error", () => undefined);
    });
    assert.equal(status, 401);
    ws.terminate();
  });
});
