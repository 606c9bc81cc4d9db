// The local cluster: emulated hosts, a real control plane, and a node agent per
// host. up() builds or reuses the Kubernetes binaries; down() removes every
// process, namespace, link, mount point and file it made, also after a failure.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createdMountPoints } from "./agent/container";
import { NodeAgent } from "./agent/node-agent";
import { type ControlPlane, startControlPlane } from "./control-plane";
import { type Host, createHosts, destroyHosts, hostsFor } from "./hosts";
import { freePort } from "../support/net";
import { type WaitOptions, waitFor } from "../support/wait";

const run = promisify(execFile);
const ROOT = join(__dirname, "..", "..");

export interface Cluster {
  readonly hosts: readonly Host[];
  readonly controlPlane: ControlPlane;
  readonly kubeconfig: KubeConfig;
  readonly workDir: string;
  down(): Promise<void>;
}

export type Progress = (step: string) => void;

/** Builds the Kubernetes binaries, or reuses the cached ones; returns their directory. */
export async function kubernetesBinaries(progress: Progress): Promise<string> {
  progress("Kubernetes binaries: building or reusing (the first build takes about 16 minutes on 2 cores)");
  const { stdout } = await run("bash", [join(ROOT, "tools", "build-kubernetes.sh")], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim().split("\n").pop()!;
}

export async function clusterUp(nodes: readonly string[], progress: Progress = () => undefined): Promise<Cluster> {
  if (process.getuid?.() !== 0) throw new Error("the local cluster needs root (network namespaces, bind mounts)");
  const binDir = await kubernetesBinaries(progress);
  const workDir = await mkdtemp(join(tmpdir(), "zt-mesh-cluster-"));
  const hosts = hostsFor(nodes);
  const agents: NodeAgent[] = [];
  let controlPlane: ControlPlane | undefined;

  const down = async (): Promise<void> => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await controlPlane?.stop().catch(() => undefined);
    await destroyHosts();
    for (const dir of [...createdMountPoints].sort().reverse()) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    createdMountPoints.clear();
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    progress(`hosts: ${hosts.map((h) => `${h.name}=${h.ip}`).join(", ")} (network namespaces on a bridge)`);
    await createHosts(hosts);
    progress("control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler");
    const etcdPorts = [await freePort(["127.0.0.1"]), await freePort(["127.0.0.1"])] as const;
    controlPlane = await startControlPlane(binDir, workDir, etcdPorts);
    const kubeconfig = new KubeConfig();
    kubeconfig.loadFromFile(controlPlane.adminKubeconfig);
    progress(`node agents: ${nodes.join(", ")}`);
    for (const host of hosts) {
      const agent = new NodeAgent({
        host,
        kubeconfig,
        workDir: join(workDir, "nodes", host.name),
        log: () => undefined,
      });
      agents.push(agent);
      await agent.start();
    }
    await waitFor("the default service account", async () => {
      const core = kubeconfig.makeApiClient(CoreV1Api);
      await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
      return true;
    }, IN_CLUSTER);
    return { hosts, controlPlane, kubeconfig, workDir, down };
  } catch (err) {
    await down();
    throw err;
  }
}

/** Waiting on the cluster: its API answers in seconds, not milliseconds. */
export const IN_CLUSTER: WaitOptions = { timeoutMs: 120_000, intervalMs: 500 };
