// The mesh path as deployed: two proxy processes (`node proxy/dist/main.js
// --config <file>`), node a on 127.0.0.2 and node b on 127.0.0.3, discovering
// the backend and each other through a fake Kubernetes API in this process.
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ENDPOINTSLICES, FakeKubeApi, PODS, endpointSlice, meshPod } from "../test/support/fake-kube-api";
import { metric } from "../test/support/mesh-client";
import { httpGet } from "../test/support/net";
import { proxyArgv } from "../test/support/proxy-process";
import { waitFor } from "../test/support/wait";
import { type Started, startDaemon, stop } from "./children";

export const SERVICE = "bench";
const MESH_LABELS = { "app.kubernetes.io/name": "zt-mesh-proxy" };
// BENCH_PROXY_MAIN runs another build of the proxy (e.g. the last commit's, for
// a before/after comparison in one sitting); by default, this tree's.
const MAIN_JS = resolve(process.env.BENCH_PROXY_MAIN ?? resolve(__dirname, "../proxy/dist/main.js"));

export interface MeshProcess {
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly started: Started;
  readonly config: string;
}

export interface MeshPorts {
  readonly outgoing: number;
  readonly incoming: number;
  readonly admin: number;
}

export interface MeshOptions {
  readonly dir: string;
  readonly ports: MeshPorts;
  readonly backend: { ip: string; node: string; port: number };
  readonly tls: { ca: string; cert: string; key: string; identity: string };
  /** Extra node flags for the proxy processes, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
}

export class BenchMesh {
  readonly procs: MeshProcess[] = [];
  private constructor(
    readonly api: FakeKubeApi,
    private readonly opts: MeshOptions,
  ) {}

  static async start(opts: MeshOptions): Promise<BenchMesh> {
    const api = new FakeKubeApi();
    await api.start();
    const mesh = new BenchMesh(api, opts);
    try {
      await mesh.setUp();
    } catch (err) {
      await mesh.close();
      throw err;
    }
    return mesh;
  }

  private async setUp(): Promise<void> {
    const { dir, ports, backend, tls } = this.opts;
    const kubeconfig = join(dir, "kubeconfig");
    await this.api.writeKubeconfig(kubeconfig);
    this.api.upsert(
      ENDPOINTSLICES,
      endpointSlice("default", SERVICE, [{ name: "http", port: backend.port }], [{ ip: backend.ip, node: backend.node }]),
    );
    this.api.upsert(PODS, meshPod("default", "l5d-a", "a", "127.0.0.2", MESH_LABELS));
    this.api.upsert(PODS, meshPod("default", "l5d-b", "b", "127.0.0.3", MESH_LABELS));

    for (const [name, node, ip] of [
      ["mesh-out", "a", "127.0.0.2"],
      ["mesh-in", "b", "127.0.0.3"],
    ] as const) {
      const config = join(dir, `${name}.json`);
      await writeFile(
        config,
        JSON.stringify(
          {
            outgoing: { ip, port: ports.outgoing },
            incoming: { ip, port: ports.incoming },
            admin: { ip, port: ports.admin },
            tls: { caBundle: tls.ca, cert: tls.cert, key: tls.key, identity: tls.identity },
            kubernetes: {
              kubeconfig,
              meshNamespace: "default",
              meshPodSelector: "app.kubernetes.io/name=zt-mesh-proxy",
            },
            limits: { drainTimeoutMs: 2000 },
            log: { level: "info" },
          },
          null,
          2,
        ),
      );
      const started = startDaemon(
        process.execPath,
        proxyArgv(config, this.opts.nodeArgs, MAIN_JS),
        join(dir, `${name}.log`),
        { env: { ...process.env, NODE_NAME: node, HOST_IP: ip, NODE_OPTIONS: "" } },
      );
      this.procs.push({ name, node, ip, started, config });
    }
    await Promise.all(this.procs.map((p) => this.waitReady(p)));
  }

  private waitReady(p: MeshProcess, timeoutMs = 20_000): Promise<void> {
    const log = `; see ${this.opts.dir}/${p.name}.log`;
    return waitFor(
      `proxy ${p.name} to be ready`,
      async () => {
        const code = p.started.child.exitCode;
        if (code !== null) throw new Error(`proxy ${p.name} exited with ${code}${log}`);
        return (await httpGet(p.ip, this.opts.ports.admin, "/admin/ready", { timeoutMs: 1000 })).status === 200;
      },
      { timeoutMs, intervalMs: 100, detail: () => log },
    );
  }

  /** Sum of a metric on one proxy's /metrics, over samples whose labels include `labels`. */
  metric(p: MeshProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
    return metric(p.ip, this.opts.ports.admin, name, labels);
  }

  async close(): Promise<void> {
    // SIGTERM: the proxy drains and exits 0, which is also when --cpu-prof writes its profile.
    await Promise.all(this.procs.map((p) => stop(p.started, "SIGTERM", 15_000)));
    await this.api.stop();
  }
}
