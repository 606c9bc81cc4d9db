// The parts of Kubernetes API objects the proxy reads, parsed once at the
// boundary. Watch events arrive as raw JSON and lists as client classes; both
// go through these functions so the rest of the proxy sees one typed shape.

export interface SliceEndpoint {
  readonly addresses: readonly string[];
  readonly ready: boolean;
  readonly nodeName: string | undefined;
}

export interface SlicePort {
  /** The Service port's name; "" for an unnamed port. */
  readonly name: string;
  /** The target port on the endpoints. */
  readonly port: number;
}

export interface EndpointSliceInfo {
  /** namespace/name of the slice itself. */
  readonly key: string;
  /** namespace/service the slice belongs to. */
  readonly service: string;
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
}

export interface MeshPodInfo {
  /** namespace/name of the pod. */
  readonly key: string;
  readonly nodeName: string | undefined;
  readonly podIP: string | undefined;
  readonly ready: boolean;
}

type Json = Record<string, unknown>;

function obj(value: unknown): Json {
  return typeof value === "object" && value !== null ? (value as Json) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function metaKey(meta: Json): string | undefined {
  const name = str(meta.name);
  if (name === undefined) return undefined;
  return `${str(meta.namespace) ?? ""}/${name}`;
}

/** Parses an EndpointSlice; undefined for slices that belong to no Service. */
export function parseEndpointSlice(raw: unknown): EndpointSliceInfo | undefined {
  const o = obj(raw);
  const meta = obj(o.metadata);
  const key = metaKey(meta);
  const serviceName = str(obj(meta.labels)["kubernetes.io/service-name"]);
  if (key === undefined || serviceName === undefined) return undefined;
  if (str(o.addressType) === "FQDN") return undefined;
  const ports: SlicePort[] = [];
  for (const p of arr(o.ports)) {
    const po = obj(p);
    const protocol = str(po.protocol) ?? "TCP";
    if (protocol !== "TCP" || typeof po.port !== "number") continue;
    ports.push({ name: typeof po.name === "string" ? po.name : "", port: po.port });
  }
  const endpoints: SliceEndpoint[] = [];
  for (const e of arr(o.endpoints)) {
    const eo = obj(e);
    const conditions = obj(eo.conditions);
    // A nil "ready" means ready (API docs): only an explicit false takes it out.
    const ready = conditions.ready !== false && conditions.terminating !== true;
    const addresses = arr(eo.addresses).filter((a): a is string => typeof a === "string");
    endpoints.push({ addresses, ready, nodeName: str(eo.nodeName) });
  }
  return { key, service: `${str(meta.namespace) ?? ""}/${serviceName}`, ports, endpoints };
}

export function parseMeshPod(raw: unknown): MeshPodInfo | undefined {
  const o = obj(raw);
  const meta = obj(o.metadata);
  const key = metaKey(meta);
  if (key === undefined) return undefined;
  const status = obj(o.status);
  // Lists arrive deserialised (timestamps as Date), watch events as JSON strings.
  const deleting = meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;
  const readyCondition = arr(status.conditions)
    .map(obj)
    .find((c) => c.type === "Ready");
  const ready = !deleting && str(status.phase) === "Running" && readyCondition?.status === "True";
  return { key, nodeName: str(obj(o.spec).nodeName), podIP: str(status.podIP), ready };
}
