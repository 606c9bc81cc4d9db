// The classic walkthrough against the local cluster, run the way a user runs it:
// curl from a client on node A. Everything it needs (identity, ports, the mesh
// Service, the certificate) is read from what was deployed, not assumed.
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1DaemonSet } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseConfigText } from "@zt-mesh/proxy-config";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { type CaptureReport, analyse, startCapture } from "./capture";
import { waitFor } from "../support/wait";
import { IN_CLUSTER } from "./cluster";
import { type Host, inHost } from "./hosts";
import { TestPki } from "../support/pki";
import { httpGet } from "../support/net";

const run = promisify(execFile);

export interface MeshDeployment {
  readonly namespace: string;
  readonly daemonSet: V1DaemonSet;
  readonly config: ProxyConfig;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly serviceName: string;
}

export interface WalkthroughResult {
  readonly hello: string;
  readonly helloNode: string;
  readonly worldNode: string;
  readonly pong: string;
  /** What world answered through a CONNECT tunnel from a node it does not run on. */
  readonly tunnelled: string;
  readonly tunnelNode: string;
  readonly refusedWithoutCert: boolean;
  readonly refusedOtherCa: boolean;
  readonly capture: CaptureReport;
  readonly outgoingHelloRequests: number;
  readonly incomingWorldRequests: number;
}

/** Finds the mesh DaemonSet and reads its rendered config and TLS Secret. */
export async function findMesh(kc: KubeConfig): Promise<MeshDeployment> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const all = await apps.listDaemonSetForAllNamespaces({ labelSelector: "app.kubernetes.io/name=zt-mesh-proxy" });
  const ds = all.items[0];
  if (ds === undefined) throw new Error("no zt-mesh proxy DaemonSet found");
  const namespace = ds.metadata!.namespace!;
  const volumes = ds.spec!.template.spec!.volumes ?? [];
  const cmName = volumes.find((v) => v.configMap !== undefined)?.configMap?.name;
  const secretName = volumes.find((v) => v.secret !== undefined)?.secret?.secretName;
  if (cmName === undefined || secretName === undefined) throw new Error("mesh DaemonSet mounts no config or TLS Secret");
  const cm = await core.readNamespacedConfigMap({ name: cmName, namespace });
  const config = parseConfigText(cm.data?.["config.yaml"] ?? "", `ConfigMap ${namespace}/${cmName}`);
  const secret = await core.readNamespacedSecret({ name: secretName, namespace });
  const get = (k: string): string => Buffer.from(secret.data?.[k] ?? "", "base64").toString();
  const services = await core.listNamespacedService({ namespace });
  const svc = services.items.find((s) => s.spec?.ports?.some((p) => p.name === "admin") && s.spec?.ports?.some((p) => p.name === "incoming"));
  if (svc === undefined) throw new Error("no mesh Service with admin and incoming ports");
  return {
    namespace,
    daemonSet: ds,
    config,
    tls: { ca: get("ca-bundle.crt"), cert: get("tls.crt"), key: get("tls.key") },
    serviceName: svc.metadata!.name!,
  };
}

/** Waits until every node has a ready proxy and hello and world are ready. */
export async function waitForMesh(kc: KubeConfig, nodes: number, demoNamespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const ready = (p: { status?: { conditions?: { type: string; status: string }[] } }): boolean =>
    p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  await waitFor(`a ready proxy on each of ${nodes} nodes`, async () => {
    const pods = await core.listPodForAllNamespaces({ labelSelector: "app.kubernetes.io/name=zt-mesh-proxy" });
    return pods.items.filter(ready).length === nodes;
  }, IN_CLUSTER);
  for (const app of ["hello", "world"]) {
    await waitFor(`${app} to be ready`, async () => {
      const pods = await core.listNamespacedPod({ namespace: demoNamespace, labelSelector: `app.kubernetes.io/name=${app}` });
      return pods.items.some(ready);
    }, IN_CLUSTER);
  }
}

async function curl(host: Host, args: readonly string[], env: Record<string, string> = {}): Promise<{ ok: boolean; out: string }> {
  const argv = inHost(host, ["curl", "-sS", "--max-time", "10", ...args]);
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
    return { ok: true, out: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() };
  }
}

async function nodeOf(kc: KubeConfig, namespace: string, app: string): Promise<string> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=${app}` });
  return pods.items[0]?.spec?.nodeName ?? "?";
}

async function metric(ip: string, port: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await httpGet(ip, port, "/metrics")).body;
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(" ").pop());
  }
  return total;
}

export async function runWalkthrough(
  kc: KubeConfig,
  hosts: readonly Host[],
  workDir: string,
  demoNamespace: string,
  progress: (step: string) => void,
): Promise<WalkthroughResult> {
  const mesh = await findMesh(kc);
  const { identity } = mesh.config.tls;
  const ports = { outgoing: mesh.config.outgoing.port, incoming: mesh.config.incoming.port, admin: mesh.config.admin.port };
  const [a] = hosts;
  if (a === undefined) throw new Error("no hosts");
  const helloNode = await nodeOf(kc, demoNamespace, "hello");
  const worldNode = await nodeOf(kc, demoNamespace, "world");
  const b = hosts.find((h) => h.name !== a.name) ?? a;
  const far = hosts.find((h) => h.name !== worldNode) ?? a;
  const dir = join(workDir, "walkthrough");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "ca.crt"), mesh.tls.ca);
  await writeFile(join(dir, "tls.crt"), mesh.tls.cert);
  await writeFile(join(dir, "tls.key"), mesh.tls.key, { mode: 0o600 });

  progress("capture: tcpdump on the links between nodes");
  const capture = await startCapture(join(dir, "links.pcap"));
  let hello;
  let tunnelled;
  let pong;
  let noCert;
  let otherCa;
  try {
    progress(`node ${a.name}: http_proxy=${a.ip}:${ports.outgoing} curl -s http://hello   (hello on ${helloNode}, world on ${worldNode})`);
    hello = await curl(a, ["http://hello"], { http_proxy: `http://${a.ip}:${ports.outgoing}` });

    progress(`node ${far.name}: curl -p -x http://${far.ip}:${ports.outgoing} http://world   (a CONNECT tunnel to world on ${worldNode})`);
    tunnelled = await curl(far, ["-p", "-x", `http://${far.ip}:${ports.outgoing}`, "http://world"]);

    const dtab = `/svc=>/#/io.l5d.k8s/${mesh.namespace}/admin/${mesh.serviceName};`;
    const tlsArgs = ["--cacert", join(dir, "ca.crt"), "--resolve", `${identity}:${ports.incoming}:${b.ip}`, "-H", `l5d-dtab: ${dtab}`];
    const url = `https://${identity}:${ports.incoming}/admin/ping`;
    progress(`node ${a.name}: curl --cert tls.crt --key tls.key -H 'l5d-dtab: ${dtab}' ${url}  (node ${b.name})`);
    pong = await curl(a, [...tlsArgs, "--cert", join(dir, "tls.crt"), "--key", join(dir, "tls.key"), url]);

    progress("the same without a client certificate, and with one from another CA: both must be refused");
    noCert = await curl(a, [...tlsArgs, url]);
    const pki = await TestPki.create();
    try {
      const rogueCa = await pki.ca("rogue-ca");
      const rogue = await pki.leaf(rogueCa, { dns: [identity] });
      await writeFile(join(dir, "rogue.crt"), rogue.cert);
      await writeFile(join(dir, "rogue.key"), rogue.key);
      otherCa = await curl(a, [...tlsArgs, "--cert", join(dir, "rogue.crt"), "--key", join(dir, "rogue.key"), url]);
    } finally {
      await pki.cleanup();
    }
  } finally {
    await capture.stop();
  }
  const report = await analyse(capture.file, ports.incoming, ["Hello world", "GET /", "pong", "l5d-dtab", "HTTP/1.1 200"]);

  const worldHost = hosts.find((h) => h.name === worldNode) ?? b;
  return {
    hello: hello.out,
    helloNode,
    worldNode,
    pong: pong.out,
    tunnelled: tunnelled.out,
    tunnelNode: far.name,
    refusedWithoutCert: !noCert.ok && !noCert.out.includes("pong"),
    refusedOtherCa: !otherCa.ok && !otherCa.out.includes("pong"),
    capture: report,
    outgoingHelloRequests: await metric(a.ip, ports.admin, "mesh_requests_total", { direction: "outgoing", service: `${demoNamespace}/hello` }),
    incomingWorldRequests: await metric(worldHost.ip, ports.admin, "mesh_requests_total", { direction: "incoming", service: `${demoNamespace}/world` }),
  };
}
