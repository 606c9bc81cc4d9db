// A two-node mesh in one process: node "a" on 127.0.0.2 and node "b" on
// 127.0.0.3, each with its proxy, the fake API server describing them, and the
// classic hello (node a) and world (node b) apps. hello calls world through its
// node's proxy, as the demo does in the cluster.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type Server, createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "@zt-mesh/proxy-config";
import type { ProxyConfig, ProxyConfigInput } from "@zt-mesh/proxy-config";
import { type RunningProxy, startProxy } from "../../proxy/src/proxy";
import { createLogger } from "../../proxy/src/telemetry/log";
import { ENDPOINTSLICES, FakeKubeApi, PODS, endpointSlice, meshPod } from "./fake-kube-api";
import { freePort } from "./net";
import { type KeyPair, type TestCa, TestPki } from "./pki";

export const IDENTITY = "mesh.test.local";
export const MESH_LABELS = { "app.kubernetes.io/name": "zt-mesh-proxy" };

export interface MeshNode {
  readonly name: string;
  readonly ip: string;
  proxy: RunningProxy;
  readonly logs: string[];
}

export interface Ports {
  readonly outgoing: number;
  readonly incoming: number;
  readonly admin: number;
  readonly hello: number;
  readonly world: number;
}

export interface MeshOptions {
  /** Extra config merged into every proxy's config. */
  readonly config?: (node: string) => ProxyConfigInput;
  /** Runs once the fake API server describes the mesh, before the proxies start (an identity service, say). */
  readonly beforeProxies?: (mesh: MeshFixture) => Promise<void>;
}

export class MeshFixture {
  readonly nodes: Record<"a" | "b", MeshNode> = {} as Record<"a" | "b", MeshNode>;
  private readonly apps: Server[] = [];
  tlsDir = "";
  kubeconfig = "";
  ca!: TestCa;
  meshCert!: KeyPair;
  ports!: Ports;

  private constructor(
    readonly pki: TestPki,
    readonly api: FakeKubeApi,
    private readonly dir: string,
  ) {}

  static async start(opts: MeshOptions = {}): Promise<MeshFixture> {
    const pki = await TestPki.create();
    const api = new FakeKubeApi();
    await api.start();
    const mesh = new MeshFixture(pki, api, await mkdtemp(join(tmpdir(), "zt-mesh-test-")));
    try {
      await mesh.setUp(opts);
    } catch (err) {
      await mesh.close();
      throw err;
    }
    return mesh;
  }

  private async setUp(opts: MeshOptions): Promise<void> {
    this.ca = await this.pki.ca("mesh-ca");
    this.meshCert = await this.pki.leaf(this.ca, { dns: [IDENTITY] });
    this.tlsDir = join(this.dir, "tls");
    await this.writeTls(this.ca.cert, this.meshCert);
    this.kubeconfig = join(this.dir, "kubeconfig");
    await this.api.writeKubeconfig(this.kubeconfig);

    const ips = ["127.0.0.2", "127.0.0.3"];
    this.ports = {
      outgoing: await freePort(ips),
      incoming: await freePort(ips),
      admin: await freePort(ips),
      hello: await freePort(ips),
      world: await freePort(ips),
    };
    await this.startApps();

    const api = this.api;
    api.upsert(ENDPOINTSLICES, endpointSlice("default", "world", [{ name: "http", port: this.ports.world }], [{ ip: "127.0.0.3", node: "b" }]));
    api.upsert(ENDPOINTSLICES, endpointSlice("default", "hello", [{ name: "http", port: this.ports.hello }], [{ ip: "127.0.0.2", node: "a" }]));
    api.upsert(
      ENDPOINTSLICES,
      endpointSlice(
        "default",
        "l5d",
        [
          { name: "admin", port: this.ports.admin },
          { name: "incoming", port: this.ports.incoming },
        ],
        [
          { ip: "127.0.0.2", node: "a" },
          { ip: "127.0.0.3", node: "b" },
        ],
      ),
    );
    api.upsert(PODS, meshPod("default", "l5d-a", "a", "127.0.0.2", MESH_LABELS));
    api.upsert(PODS, meshPod("default", "l5d-b", "b", "127.0.0.3", MESH_LABELS));
    await opts.beforeProxies?.(this);

    for (const [name, ip] of [["a", "127.0.0.2"], ["b", "127.0.0.3"]] as const) {
      const logs: string[] = [];
      const proxy = await startProxy({
        config: this.config(ip, opts.config?.(name)),
        nodeName: name,
        hostIp: ip,
        log: createLogger("debug", (line) => logs.push(line)),
      });
      this.nodes[name] = { name, ip, proxy, logs };
    }
    await Promise.all(Object.values(this.nodes).map((n) => this.waitReady(n)));
  }

  config(ip: string, extra: ProxyConfigInput = {}): ProxyConfig {
    return parseConfig({
      ...extra,
      outgoing: { ip, port: this.ports.outgoing, ...extra.outgoing },
      incoming: { ip, port: this.ports.incoming, ...extra.incoming },
      admin: { ip, port: this.ports.admin, ...extra.admin },
      tls: {
        caBundle: join(this.tlsDir, "ca-bundle.crt"),
        cert: join(this.tlsDir, "tls.crt"),
        key: join(this.tlsDir, "tls.key"),
        identity: IDENTITY,
        reloadIntervalMs: 200,
        ...extra.tls,
      },
      kubernetes: {
        kubeconfig: this.kubeconfig,
        meshNamespace: "default",
        meshPodSelector: "app.kubernetes.io/name=zt-mesh-proxy",
        watchRetryMs: 100,
        ...extra.kubernetes,
      },
      log: { level: "debug" },
    });
  }

  /** Replaces the mounted TLS files the way a Secret update does: every file at once. */
  async writeTls(caBundle: string, pair: KeyPair): Promise<void> {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(this.tlsDir, { recursive: true });
    await writeFile(join(this.tlsDir, "ca-bundle.crt"), caBundle);
    await writeFile(join(this.tlsDir, "tls.crt"), pair.cert);
    await writeFile(join(this.tlsDir, "tls.key"), pair.key);
  }

  async waitReady(node: MeshNode, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const req = request({ host: node.ip, port: this.ports.admin, path: "/admin/ready" }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on("error", () => resolve(false));
        req.end();
      });
      if (ok && node.proxy.index.peerForNode("a") && node.proxy.index.peerForNode("b")) return;
      if (Date.now() > deadline) {
        throw new Error(`proxy on node ${node.name} not ready; its log:\n${node.logs.slice(-20).join("")}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async startApps(): Promise<void> {
    const world = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://world");
      if (url.pathname === "/echo") {
        res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/octet-stream" });
        req.pipe(res);
        return;
      }
      if (url.pathname === "/bytes") {
        const n = Number(url.searchParams.get("n") ?? "0");
        const chunk = Buffer.alloc(64 * 1024, "x");
        res.writeHead(200, { "content-type": "application/octet-stream" });
        let left = n;
        const pump = (): void => {
          while (left > 0) {
            const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
            left -= piece.length;
            if (!res.write(piece)) {
              res.once("drain", pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      if (url.pathname === "/slow") {
        const ms = Number(url.searchParams.get("ms") ?? "100");
        setTimeout(() => {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end("slow world");
        }, ms);
        return;
      }
      if (url.pathname === "/headers") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(req.headers));
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("world");
    });
    const hello = createServer((req, res) => {
      // hello's http_proxy is its own node's outgoing listener.
      const up = request(
        { host: "127.0.0.2", port: this.ports.outgoing, path: "http://world/", headers: { host: "world" } },
        (r) => {
          let body = "";
          r.on("data", (c: Buffer) => (body += c.toString()));
          r.on("end", () => {
            res.writeHead(r.statusCode === 200 ? 200 : 502, { "content-type": "text/plain" });
            res.end(r.statusCode === 200 ? `Hello ${body}` : `hello could not reach world: ${r.statusCode} ${body}`);
          });
        },
      );
      up.on("error", (e) => {
        res.writeHead(502);
        res.end(`hello could not reach world: ${e.message}`);
      });
      up.end();
      req.resume();
    });
    await new Promise<void>((r) => world.listen(this.ports.world, "127.0.0.3", r));
    await new Promise<void>((r) => hello.listen(this.ports.hello, "127.0.0.2", r));
    this.apps.push(world, hello);
  }

  async close(): Promise<void> {
    for (const n of Object.values(this.nodes)) await n.proxy.shutdown().catch(() => undefined);
    for (const s of this.apps) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await this.api.stop();
    await this.pki.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}
