// Plays the kubelet for one emulated host: registers the Node and keeps its
// lease and Ready condition fresh, runs the pods the scheduler binds to it as
// local processes, reports their phase and readiness from the declared
// probes, refreshes mounted ConfigMaps and Secrets, and stops processes when
// pods are deleted. The controllers (DaemonSet, EndpointSlice, ...) and the
// scheduler are the real ones.
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  ListWatch,
  PatchStrategy,
  type V1Pod,
  Watch,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Host } from "../hosts";
import { ImageError, type RunningContainer, startContainer, stopContainer } from "./container";
import { runProbe } from "./probes";
import { type MaterialisedVolume, materialise } from "./volumes";

const HEARTBEAT_MS = 5000;
const PROBE_MS = 1000;
const VOLUME_REFRESH_MS = 2000;
const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

interface PodRun {
  pod: V1Pod;
  readonly dir: string;
  readonly volumes: Map<string, MaterialisedVolume>;
  readonly containers: Map<string, RunningContainer>;
  readonly restarts: Map<string, number>;
  readonly livenessFailures: Map<string, number>;
  ready: boolean;
  stopping: boolean;
  timer?: NodeJS.Timeout;
  lastVolumeRefresh: number;
  reportedPhase?: string;
}

function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export interface NodeAgentOptions {
  readonly host: Host;
  readonly kubeconfig: KubeConfig;
  readonly workDir: string;
  readonly log: (event: string, fields?: Record<string, unknown>) => void;
}

export class NodeAgent {
  private readonly core: CoreV1Api;
  private readonly leases: CoordinationV1Api;
  private readonly pods = new Map<string, PodRun>();
  private informer?: ListWatch<V1Pod>;
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly o: NodeAgentOptions) {
    this.core = o.kubeconfig.makeApiClient(CoreV1Api);
    this.leases = o.kubeconfig.makeApiClient(CoordinationV1Api);
  }

  get name(): string {
    return this.o.host.name;
  }

  async start(): Promise<void> {
    await this.register();
    this.heartbeat = setInterval(() => void this.beat().catch((e: Error) => this.o.log("heartbeat_failed", { error: e.message })), HEARTBEAT_MS);
    const fieldSelector = `spec.nodeName=${this.name}`;
    this.informer = new ListWatch<V1Pod>(
      "/api/v1/pods",
      new Watch(this.o.kubeconfig),
      () => this.core.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    this.informer.on("add", (p) => this.sync(p));
    this.informer.on("update", (p) => this.sync(p));
    this.informer.on("delete", (p) => void this.stopPod(p, true));
    this.informer.on("error", () => {
      if (!this.stopped) setTimeout(() => void this.informer?.start(), 1000);
    });
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    await this.informer?.stop();
    await Promise.all([...this.pods.values()].map((r) => this.stopPod(r.pod, false)));
  }

  private async register(): Promise<void> {
    const { host } = this.o;
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: host.name,
        labels: { "kubernetes.io/hostname": host.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
      },
      spec: {},
    };
    await this.core.createNode({ body: node }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
    await this.beat();
  }

  private async beat(): Promise<void> {
    const now = new Date();
    const { host } = this.o;
    await this.core.patchNodeStatus(
      {
        name: host.name,
        body: {
          status: {
            addresses: [
              { type: "InternalIP", address: host.ip },
              { type: "Hostname", address: host.name },
            ],
            capacity: { cpu: "2", memory: "8Gi", pods: "110" },
            allocatable: { cpu: "2", memory: "8Gi", pods: "110" },
            conditions: [
              { type: "Ready", status: "True", reason: "KubeletReady", message: "emulated node agent is posting ready status", lastHeartbeatTime: now, lastTransitionTime: now },
              { type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory", lastHeartbeatTime: now, lastTransitionTime: now },
              { type: "DiskPressure", status: "False", reason: "KubeletHasNoDiskPressure", lastHeartbeatTime: now, lastTransitionTime: now },
              { type: "PIDPressure", status: "False", reason: "KubeletHasSufficientPID", lastHeartbeatTime: now, lastTransitionTime: now },
            ],
            nodeInfo: {
              kubeletVersion: "v1.36.5",
              kubeProxyVersion: "",
              containerRuntimeVersion: "zt-mesh-emulated://1",
              operatingSystem: "linux",
              architecture: "amd64",
              osImage: "emulated",
              kernelVersion: "",
              machineID: host.name,
              systemUUID: host.name,
              bootID: host.name,
            },
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    const lease = {
      metadata: { name: host.name, namespace: "kube-node-lease" },
      // Lease times are MicroTime (six fractional digits); the client passes a string through as is.
      spec: { holderIdentity: host.name, leaseDurationSeconds: 40, renewTime: microTime(now) as unknown as Date },
    };
    await this.leases
      .replaceNamespacedLease({ name: host.name, namespace: "kube-node-lease", body: lease })
      .catch(async (e: { code?: number }) => {
        if (e.code === 404) await this.leases.createNamespacedLease({ namespace: "kube-node-lease", body: lease });
        else throw e;
      });
  }

  private key(pod: V1Pod): string {
    return `${pod.metadata!.namespace}/${pod.metadata!.name}/${pod.metadata!.uid}`;
  }

  private sync(pod: V1Pod): void {
    if (this.stopped) return;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      void this.stopPod(pod, true);
      return;
    }
    const key = this.key(pod);
    const existing = this.pods.get(key);
    if (existing !== undefined) {
      existing.pod = pod;
      return;
    }
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
    const run: PodRun = {
      pod,
      dir: join(this.o.workDir, "pods", pod.metadata!.uid!),
      volumes: new Map(),
      containers: new Map(),
      restarts: new Map(),
      livenessFailures: new Map(),
      ready: false,
      stopping: false,
      lastVolumeRefresh: Date.now(),
    };
    this.pods.set(key, run);
    void this.startPod(run).catch((e: Error) => {
      this.o.log("pod_start_failed", { pod: key, error: e.message });
      void this.reportStatus(run, e instanceof ImageError ? "ErrImagePull" : "CreateContainerError", e.message);
    });
  }

  private async startPod(run: PodRun): Promise<void> {
    const { pod } = run;
    await mkdir(run.dir, { recursive: true });
    for (const v of pod.spec?.volumes ?? []) {
      run.volumes.set(v.name, await materialise(this.core, pod, v, join(run.dir, "volumes"), "https://kubernetes.default.svc"));
    }
    for (const c of pod.spec?.containers ?? []) await this.launch(run, c.name);
    this.o.log("pod_started", { pod: this.key(pod), node: this.name });
    await this.reportStatus(run);
    run.timer = setInterval(() => void this.tick(run), PROBE_MS);
  }

  private async launch(run: PodRun, name: string): Promise<void> {
    const c = run.pod.spec!.containers.find((x) => x.name === name)!;
    const rc = await startContainer(run.pod, c, this.o.host, run.volumes, join(run.dir, `${name}.log`));
    run.containers.set(name, rc);
    void rc.exited.then((code) => {
      if (run.stopping || this.stopped) return;
      run.restarts.set(name, (run.restarts.get(name) ?? 0) + 1);
      this.o.log("container_exited", { pod: this.key(run.pod), container: name, code });
      // restartPolicy Always, with a short back-off.
      setTimeout(() => {
        if (!run.stopping && !this.stopped) void this.launch(run, name);
      }, 1000);
    });
  }

  private async tick(run: PodRun): Promise<void> {
    if (run.stopping) return;
    if (Date.now() - run.lastVolumeRefresh > VOLUME_REFRESH_MS) {
      run.lastVolumeRefresh = Date.now();
      for (const v of run.volumes.values()) await v.refresh().catch(() => false);
    }
    let ready = true;
    for (const c of run.pod.spec?.containers ?? []) {
      const proc = run.containers.get(c.name);
      if (proc === undefined || proc.child.exitCode !== null) {
        ready = false;
        continue;
      }
      if (c.livenessProbe !== undefined && !(await runProbe(this.o.host.ip, c, c.livenessProbe))) {
        const fails = (run.livenessFailures.get(c.name) ?? 0) + 1;
        run.livenessFailures.set(c.name, fails);
        if (fails >= (c.livenessProbe.failureThreshold ?? 3)) {
          // The exit handler restarts it, as restartPolicy Always does.
          run.livenessFailures.set(c.name, 0);
          await stopContainer(proc, 1000);
        }
      } else {
        run.livenessFailures.set(c.name, 0);
      }
      if (c.readinessProbe !== undefined && !(await runProbe(this.o.host.ip, c, c.readinessProbe))) ready = false;
    }
    if (ready !== run.ready) {
      run.ready = ready;
      await this.reportStatus(run).catch(() => undefined);
    }
  }

  private async reportStatus(run: PodRun, waitingReason?: string, message?: string): Promise<void> {
    const { pod } = run;
    const now = new Date().toISOString();
    const ready = run.ready ? "True" : "False";
    const ip = this.o.host.ip;
    const containerStatuses = (pod.spec?.containers ?? []).map((c) => {
      const running = run.containers.get(c.name)?.child.exitCode === null;
      return {
        name: c.name,
        image: c.image,
        imageID: `emulated://${c.image}`,
        ready: run.ready,
        started: running,
        restartCount: run.restarts.get(c.name) ?? 0,
        state: running
          ? { running: { startedAt: now } }
          : { waiting: { reason: waitingReason ?? "ContainerCreating", message } },
      };
    });
    await this.core.patchNamespacedPodStatus(
      {
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        body: {
          status: {
            phase: "Running",
            hostIP: ip,
            hostIPs: [{ ip }],
            podIP: ip,
            podIPs: [{ ip }],
            startTime: pod.status?.startTime ?? now,
            conditions: [
              { type: "PodScheduled", status: "True", lastTransitionTime: now },
              { type: "Initialized", status: "True", lastTransitionTime: now },
              { type: "ContainersReady", status: ready, lastTransitionTime: now },
              { type: "Ready", status: ready, lastTransitionTime: now },
            ],
            containerStatuses,
          },
        },
      },
      merge,
    );
  }

  private async stopPod(pod: V1Pod, finalise: boolean): Promise<void> {
    const key = this.key(pod);
    const run = this.pods.get(key);
    if (run === undefined || run.stopping) return;
    run.stopping = true;
    clearInterval(run.timer);
    const graceMs = (pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    await Promise.all([...run.containers.values()].map((c) => stopContainer(c, graceMs)));
    this.pods.delete(key);
    await rm(run.dir, { recursive: true, force: true });
    this.o.log("pod_stopped", { pod: key });
    if (finalise && !this.stopped) {
      // The kubelet confirms a graceful deletion by deleting with grace 0.
      await this.core
        .deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 })
        .catch(() => undefined);
    }
  }
}
