// Kubernetes watches that keep the EndpointIndex current: EndpointSlices across
// the cluster, and the mesh's own pods (to know which proxy serves which node).
// A failed watch is restarted with backoff; until it recovers, the index keeps
// the last known state, so an API outage does not take routes away.
import { CoreV1Api, DiscoveryV1Api, makeInformer, type KubernetesObject } from "@kubernetes/client-node";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import type { Logger } from "../telemetry/log";
import { loadKubeConfig } from "../util/kubeconfig";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import type { EndpointIndex } from "./endpoint-index";
import { parseEndpointSlice, parseMeshPod } from "./objects";

type Informer = ReturnType<typeof makeInformer<KubernetesObject>>;

export interface DiscoveryOptions {
  readonly config: ProxyConfig["kubernetes"];
  readonly index: EndpointIndex;
  readonly log: Logger;
  readonly metrics: MeshMetrics;
}

const MAX_RETRY_MS = 30_000;

export class KubernetesDiscovery {
  private readonly informers: { name: string; informer: Informer; retryMs: number; timer?: NodeJS.Timeout }[] = [];
  private readonly synced = new Set<string>();
  private readonly syncWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly opts: DiscoveryOptions) {}

  /** True once every watch has completed its first list. */
  get ready(): boolean {
    return this.synced.size === 2;
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    const { config, index } = this.opts;
    const kc = loadKubeConfig(config.kubeconfig);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const core = kc.makeApiClient(CoreV1Api);

    this.add(
      "endpointslices",
      makeInformer<KubernetesObject>(kc, "/apis/discovery.k8s.io/v1/endpointslices", () =>
        this.listed("endpointslices", discovery.listEndpointSliceForAllNamespaces()),
      ),
      (o) => {
        const s = parseEndpointSlice(o);
        if (s !== undefined) index.upsertSlice(s);
      },
      (o) => {
        const s = parseEndpointSlice(o);
        if (s !== undefined) index.deleteSlice(s.key);
      },
    );

    const ns = config.meshNamespace;
    this.add(
      "pods",
      makeInformer<KubernetesObject>(
        kc,
        `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`,
        () => this.listed("pods", core.listNamespacedPod({ namespace: ns, labelSelector: config.meshPodSelector })),
        config.meshPodSelector,
      ),
      (o) => {
        const p = parseMeshPod(o);
        if (p !== undefined) index.upsertMeshPod(p);
      },
      (o) => {
        const p = parseMeshPod(o);
        if (p !== undefined) index.deleteMeshPod(p.key);
      },
    );

    for (const entry of this.informers) void this.run(entry);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.informers) {
      clearTimeout(entry.timer);
      await entry.informer.stop().catch(() => undefined);
    }
  }

  private add(
    name: string,
    informer: Informer,
    upsert: (o: KubernetesObject) => void,
    remove: (o: KubernetesObject) => void,
  ): void {
    const entry = { name, informer, retryMs: this.opts.config.watchRetryMs };
    informer.on("add", upsert);
    informer.on("update", upsert);
    informer.on("delete", remove);
    informer.on("error", (err: unknown) => this.failed(entry, err));
    this.informers.push(entry);
  }

  /**
   * Wraps a list call so the first completed list marks the watch as synced. The
   * informer applies the listed items synchronously after this promise settles,
   * so the mark is deferred one macrotask to land after them.
   */
  private async listed<T>(name: string, list: Promise<T>): Promise<T> {
    const result = await list;
    setImmediate(() => this.markSynced(name));
    return result;
  }

  private markSynced(name: string): void {
    const entry = this.informers.find((e) => e.name === name);
    if (entry !== undefined) entry.retryMs = this.opts.config.watchRetryMs;
    if (this.synced.has(name)) return;
    this.synced.add(name);
    this.opts.metrics.discoverySynced.labels(name).set(1);
    this.opts.log.info("discovery_synced", { resource: name });
    if (this.ready) for (const w of this.syncWaiters.splice(0)) w();
  }

  private async run(entry: (typeof this.informers)[number]): Promise<void> {
    try {
      await entry.informer.start();
    } catch (err) {
      this.failed(entry, err);
    }
  }

  private failed(entry: (typeof this.informers)[number], err: unknown): void {
    if (this.stopped) return;
    this.opts.metrics.discoveryErrors.labels(entry.name).inc();
    this.opts.log.warn("discovery_watch_failed", {
      resource: entry.name,
      error: errorMessage(err),
      retryInMs: entry.retryMs,
    });
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.run(entry), entry.retryMs);
    entry.retryMs = Math.min(entry.retryMs * 2, MAX_RETRY_MS);
  }
}
