// A stand-in for the Kubernetes API server's list and watch endpoints, enough
// for @kubernetes/client-node's informers: lists carry a resourceVersion, and
// watches stream JSON lines of ADDED/MODIFIED/DELETED events. It serves the
// recorded objects a test gives it, and can be "taken down" to test outages.
// For the identity service it also answers TokenReviews (for the tokens a test
// registers, checking the audiences asked for as the API server does) and
// single pod reads. The real API server comes with the cluster tests.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import { writeFile } from "node:fs/promises";

type Obj = {
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; resourceVersion?: string };
} & Record<string, unknown>;

/** What the API server knows of a ServiceAccount token: whose it is, for which audiences, bound to what. */
export interface TokenInfo {
  readonly username: string;
  readonly audiences: readonly string[];
  readonly extra?: Record<string, string[]>;
}

/** A projected token of `serviceAccount`, bound (as the kubelet's are) to a pod and its node. */
export function podToken(namespace: string, serviceAccount: string, pod: string, node: string, audiences = ["zt-mesh-identity"]): TokenInfo {
  return {
    username: `system:serviceaccount:${namespace}:${serviceAccount}`,
    audiences,
    extra: {
      "authentication.kubernetes.io/pod-name": [pod],
      "authentication.kubernetes.io/pod-uid": [`uid-${pod}`],
      "authentication.kubernetes.io/node-name": [node],
    },
  };
}

const TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";
const POD = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/;

interface Collection {
  readonly listKind: string;
  readonly apiVersion: string;
  readonly objects: Map<string, Obj>;
  readonly watchers: Set<Watcher>;
  /** Every event, so a watch from resourceVersion N replays what came after N. */
  readonly history: { rv: number; type: string; obj: Obj }[];
}

interface Watcher {
  readonly res: ServerResponse;
  readonly selector: string | null;
  readonly namespace: string | null;
}

export const ENDPOINTSLICES = "/apis/discovery.k8s.io/v1/endpointslices";
export const PODS = "/api/v1/pods";

function matchesSelector(obj: Obj, selector: string | null): boolean {
  if (selector === null || selector === "") return true;
  const labels = obj.metadata.labels ?? {};
  return selector.split(",").every((term) => {
    const [k, v] = term.split("=");
    return labels[k!.trim()] === v?.trim();
  });
}

export class FakeKubeApi {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private rv = 100;
  private down = false;
  readonly requests: string[] = [];
  readonly tokens = new Map<string, TokenInfo>();
  /** The audiences each TokenReview asked for, in order. */
  readonly reviewedAudiences: (readonly string[])[] = [];
  private readonly collections = new Map<string, Collection>([
    [ENDPOINTSLICES, { listKind: "EndpointSliceList", apiVersion: "discovery.k8s.io/v1", objects: new Map(), watchers: new Set(), history: [] }],
    [PODS, { listKind: "PodList", apiVersion: "v1", objects: new Map(), watchers: new Set(), history: [] }],
  ]);
  port = 0;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const addr = this.server.address();
    this.port = typeof addr === "object" && addr !== null ? addr.port : 0;
  }

  async writeKubeconfig(path: string): Promise<void> {
    await writeFile(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: fake\n  cluster:\n    server: http://127.0.0.1:${this.port}\n    insecure-skip-tls-verify: true`,
        "users:",
        "- name: proxy\n  user:\n    token: test-token",
        "contexts:",
        "- name: fake\n  context:\n    cluster: fake\n    user: proxy",
        "current-context: fake",
        "",
      ].join("\n"),
    );
  }

  upsert(collection: typeof ENDPOINTSLICES | typeof PODS, obj: Obj): void {
    const c = this.collections.get(collection)!;
    const key = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    const type = c.objects.has(key) ? "MODIFIED" : "ADDED";
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    c.objects.set(key, stored);
    this.notify(c, type, stored);
  }

  remove(collection: typeof ENDPOINTSLICES | typeof PODS, namespace: string, name: string): void {
    const c = this.collections.get(collection)!;
    const key = `${namespace}/${name}`;
    const obj = c.objects.get(key);
    if (obj === undefined) return;
    c.objects.delete(key);
    this.notify(c, "DELETED", { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } });
  }

  /** While down, every request fails and open watches are cut. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** As the API server: a token valid for none of the audiences asked for is not authenticated. */
  private reviewToken(req: IncomingMessage, res: ServerResponse): void {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const review = JSON.parse(body) as { spec: { token: string; audiences?: string[] } };
      const asked = review.spec.audiences ?? [];
      this.reviewedAudiences.push(asked);
      const info = this.tokens.get(review.spec.token);
      const audiences = info === undefined ? [] : asked.length === 0 ? [...info.audiences] : asked.filter((a) => info.audiences.includes(a));
      const status =
        info === undefined
          ? { authenticated: false, error: "invalid bearer token" }
          : audiences.length === 0
            ? { authenticated: false, error: `token audiences ${JSON.stringify(info.audiences)} is invalid for the target audiences ${JSON.stringify(asked)}` }
            : { authenticated: true, user: { username: info.username, uid: "sa-uid", extra: info.extra }, audiences };
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: review.spec, status }));
    });
  }

  private notify(c: Collection, type: string, obj: Obj): void {
    c.history.push({ rv: this.rv, type, obj });
    for (const w of c.watchers) send(w, type, obj);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fake");
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (this.down) {
      req.socket.destroy();
      return;
    }
    if (url.pathname === TOKEN_REVIEWS && req.method === "POST") {
      this.reviewToken(req, res);
      return;
    }
    const pod = POD.exec(url.pathname);
    if (pod !== null && req.method === "GET") {
      const obj = this.collections.get(PODS)!.objects.get(`${decodeURIComponent(pod[1]!)}/${decodeURIComponent(pod[2]!)}`);
      if (obj === undefined) return notFound(res);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(obj));
      return;
    }
    let path = url.pathname;
    let namespace: string | null = null;
    const nsMatch = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
    if (nsMatch !== null) {
      namespace = decodeURIComponent(nsMatch[1]!);
      path = PODS;
    }
    const c = this.collections.get(path);
    if (c === undefined || req.method !== "GET") return notFound(res);
    const selector = url.searchParams.get("labelSelector");
    if (url.searchParams.get("watch") === "true") {
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      res.write("");
      const w = { res, selector, namespace };
      const since = Number(url.searchParams.get("resourceVersion") ?? "0");
      for (const e of c.history) if (e.rv > since) send(w, e.type, e.obj);
      c.watchers.add(w);
      res.on("close", () => c.watchers.delete(w));
      return;
    }
    const items = [...c.objects.values()].filter(
      (o) => (namespace === null || o.metadata.namespace === namespace) && matchesSelector(o, selector),
    );
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({ apiVersion: c.apiVersion, kind: c.listKind, metadata: { resourceVersion: String(this.rv) }, items }),
    );
  }
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code: 404, reason: "NotFound" }));
}

function send(w: Watcher, type: string, obj: Obj): void {
  if (w.namespace !== null && obj.metadata.namespace !== w.namespace) return;
  if (!matchesSelector(obj, w.selector)) return;
  w.res.write(JSON.stringify({ type, object: obj }) + "\n");
}

/** An EndpointSlice as the EndpointSlice controller writes it. */
export function endpointSlice(
  namespace: string,
  service: string,
  ports: readonly { name: string; port: number }[],
  endpoints: readonly { ip: string; node: string; ready?: boolean }[],
  name = `${service}-abc12`,
): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace, labels: { "kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" } },
    addressType: "IPv4",
    ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: "TCP" })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      nodeName: e.node,
    })),
  };
}

/** A running, ready mesh proxy pod on `node`. */
export function meshPod(namespace: string, name: string, node: string, ip: string, labels: Record<string, string>): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, uid: `uid-${name}`, labels },
    spec: { nodeName: node, containers: [{ name: "proxy", image: "zt-mesh/proxy" }] },
    status: { phase: "Running", podIP: ip, hostIP: ip, conditions: [{ type: "Ready", status: "True" }] },
  };
}
