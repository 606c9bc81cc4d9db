// What the proxy knows about the cluster: ready endpoints per Service port, and
// which mesh proxy serves each node. Fed by the watches (or by recorded objects
// in tests); read on every request, so lookups are cached per Service port and
// invalidated only when that Service's slices change.
import type { EndpointSliceInfo, MeshPodInfo } from "./objects";

export interface Endpoint {
  /** "ip:port", stable across updates so load statistics survive endpoint churn. */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  readonly nodeName: string | undefined;
}

export type ServiceLookup =
  | { readonly kind: "no-service" }
  | { readonly kind: "no-port" }
  | { readonly kind: "found"; readonly endpoints: readonly Endpoint[] };

const NO_SERVICE: ServiceLookup = { kind: "no-service" };
const NO_PORT: ServiceLookup = { kind: "no-port" };

export class EndpointIndex {
  private readonly slices = new Map<string, EndpointSliceInfo>();
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly lookups = new Map<string, Map<string, ServiceLookup>>();
  private readonly meshPods = new Map<string, MeshPodInfo>();
  private peersByNode = new Map<string, string>();
  private readonly listeners = new Set<() => void>();

  upsertSlice(slice: EndpointSliceInfo): void {
    const previous = this.slices.get(slice.key);
    if (previous !== undefined && previous.service !== slice.service) this.deleteSlice(slice.key);
    this.slices.set(slice.key, slice);
    let set = this.slicesByService.get(slice.service);
    if (set === undefined) {
      set = new Set();
      this.slicesByService.set(slice.service, set);
    }
    set.add(slice.key);
    this.lookups.delete(slice.service);
    this.changed();
  }

  deleteSlice(key: string): void {
    const slice = this.slices.get(key);
    if (slice === undefined) return;
    this.slices.delete(key);
    const set = this.slicesByService.get(slice.service);
    set?.delete(key);
    if (set !== undefined && set.size === 0) this.slicesByService.delete(slice.service);
    this.lookups.delete(slice.service);
    this.changed();
  }

  upsertMeshPod(pod: MeshPodInfo): void {
    this.meshPods.set(pod.key, pod);
    this.rebuildPeers();
  }

  deleteMeshPod(key: string): void {
    if (this.meshPods.delete(key)) this.rebuildPeers();
  }

  /**
   * Ready endpoints of a Service port. `port` is the Service port's name, or a
   * number matching the endpoints' target port.
   */
  lookup(namespace: string, port: string, service: string): ServiceLookup {
    const svcKey = `${namespace}/${service}`;
    let byPort = this.lookups.get(svcKey);
    if (byPort === undefined) {
      byPort = new Map();
      this.lookups.set(svcKey, byPort);
    }
    let result = byPort.get(port);
    if (result === undefined) {
      result = this.compute(svcKey, port);
      byPort.set(port, result);
    }
    return result;
  }

  /** Pod IP of the ready mesh proxy on a node. */
  peerForNode(nodeName: string): string | undefined {
    return this.peersByNode.get(nodeName);
  }

  peerNodes(): ReadonlyMap<string, string> {
    return this.peersByNode;
  }

  /** Called after every change; the balancer uses it to forget departed endpoints. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private compute(svcKey: string, port: string): ServiceLookup {
    const keys = this.slicesByService.get(svcKey);
    if (keys === undefined) return NO_SERVICE;
    const numeric = /^[0-9]+$/.test(port) ? Number(port) : undefined;
    const seen = new Set<string>();
    const endpoints: Endpoint[] = [];
    let portFound = false;
    for (const key of keys) {
      const slice = this.slices.get(key)!;
      const match = slice.ports.find((p) => (numeric !== undefined ? p.port === numeric : p.name === port));
      if (match === undefined) continue;
      portFound = true;
      for (const e of slice.endpoints) {
        if (!e.ready) continue;
        for (const ip of e.addresses) {
          const epKey = ip.includes(":") ? `[${ip}]:${match.port}` : `${ip}:${match.port}`;
          if (seen.has(epKey)) continue;
          seen.add(epKey);
          endpoints.push({ key: epKey, ip, port: match.port, nodeName: e.nodeName });
        }
      }
    }
    if (!portFound) return NO_PORT;
    endpoints.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kind: "found", endpoints };
  }

  private rebuildPeers(): void {
    const next = new Map<string, string>();
    for (const pod of this.meshPods.values()) {
      if (!pod.ready || pod.nodeName === undefined || pod.podIP === undefined) continue;
      next.set(pod.nodeName, pod.podIP);
    }
    this.peersByNode = next;
    this.changed();
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}
