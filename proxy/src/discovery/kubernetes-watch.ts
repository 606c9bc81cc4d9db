// Kubernetes watches that keep the EndpointIndex current: EndpointSlices across
// the cluster, and the mesh's own pods (to know which proxy serves which node).
// A failed watch is restarted with backoff; until it recovers, the index keeps
// the last known state, so an API outage does not take routes away.
import type { ProxyConfig } from "../config/schema";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import type { EndpointIndex } from "./endpoint-index";
import { type KubeAccess, ListWatch, loadAccess } from "./kube-api";
import { parseEndpointSlice, parseMeshPod } from "./objects";

export interface DiscoveryOptions {
  readonly config: ProxyConfig["kubernetes"];
  readonly index: EndpointIndex;
  readonly log: Logger;
  readonly metrics: MeshMetrics;
}

const MAX_RETRY_MS = 30_000;

interface Watched {
  readonly name: string;
  readonly watch: ListWatch;
  retryMs: number;
  timer?: NodeJS.Timeout;
}

export class KubernetesDiscovery {
  private readonly watches: Watched[] = [];
  private readonly synced = new Set<string>();
  private readonly syncWaiters: (() => void)[] = [];
  private stopped = false;
  private accessRetry: NodeJS.Timeout | undefined;
  private accessRetryMs: number;

  constructor(private readonly opts: DiscoveryOptions) {
    this.accessRetryMs = opts.config.watchRetryMs;
  }

  /** True once every watch has completed its first list. */
  get ready(): boolean {
    return this.synced.size === 2;
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    // Credentials come from files; reading them may fail (a Secret not mounted
    // yet), which is retried like a failed watch.
    loadAccess(this.opts.config.kubeconfig).then(
      (access) => {
        if (!this.stopped) this.watchAll(access);
      },
      (err: unknown) => {
        if (this.stopped) return;
        this.opts.log.warn("discovery_config_failed", { error: errorMessage(err), retryInMs: this.accessRetryMs });
        this.accessRetry = setTimeout(() => this.start(), this.accessRetryMs);
        this.accessRetryMs = Math.min(this.accessRetryMs * 2, MAX_RETRY_MS);
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.accessRetry);
    for (const w of this.watches) {
      clearTimeout(w.timer);
      w.watch.stop();
    }
  }

  private watchAll(access: KubeAccess): void {
    const { config, index } = this.opts;
    this.add(access, "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", undefined, {
      upsert: (o) => {
        const s = parseEndpointSlice(o);
        if (s !== undefined) index.upsertSlice(s);
      },
      remove: (o) => {
        const s = parseEndpointSlice(o);
        if (s !== undefined) index.deleteSlice(s.key);
      },
    });
    this.add(access, "pods", `/api/v1/namespaces/${encodeURIComponent(config.meshNamespace)}/pods`, config.meshPodSelector, {
      upsert: (o) => {
        const p = parseMeshPod(o);
        if (p !== undefined) index.upsertMeshPod(p);
      },
      remove: (o) => {
        const p = parseMeshPod(o);
        if (p !== undefined) index.deleteMeshPod(p.key);
      },
    });
    for (const w of this.watches) w.watch.start();
  }

  private add(
    access: KubeAccess,
    name: string,
    path: string,
    labelSelector: string | undefined,
    apply: { upsert(o: unknown): void; remove(o: unknown): void },
  ): void {
    const entry: Watched = {
      name,
      retryMs: this.opts.config.watchRetryMs,
      watch: new ListWatch(access, path, labelSelector, {
        upsert: apply.upsert,
        remove: apply.remove,
        listed: () => this.markSynced(entry),
        error: (err) => this.failed(entry, err),
      }),
    };
    this.watches.push(entry);
  }

  private markSynced(entry: Watched): void {
    entry.retryMs = this.opts.config.watchRetryMs;
    if (this.synced.has(entry.name)) return;
    this.synced.add(entry.name);
    this.opts.metrics.discoverySynced.labels(entry.name).set(1);
    this.opts.log.info("discovery_synced", { resource: entry.name });
    if (this.ready) for (const w of this.syncWaiters.splice(0)) w();
  }

  private failed(entry: Watched, err: unknown): void {
    if (this.stopped) return;
    this.opts.metrics.discoveryErrors.labels(entry.name).inc();
    this.opts.log.warn("discovery_watch_failed", {
      resource: entry.name,
      error: errorMessage(err),
      retryInMs: entry.retryMs,
    });
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => entry.watch.start(), entry.retryMs);
    entry.retryMs = Math.min(entry.retryMs * 2, MAX_RETRY_MS);
  }
}
