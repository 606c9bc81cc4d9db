// The proxy's configuration schema: the single source of truth. The proxy parses
// its config file through it at start and on reload, and the Pulumi components
// render the ConfigMap through it, so a config the proxy would reject cannot be
// deployed. Every key has a default that is safe for production.
import { z } from "zod";
import { DtabError, parseDtabSource } from "./dtab";
import { unknownNameProblem } from "./dtab-names";
import { dnsName, ip, millis, port, trustDomain } from "./fields";
import { MESH_NAMERS } from "./namers";

// Every key applies live on reload unless marked here: these are read once, when
// a listener, the peer pool, the TLS store or the discovery watch is made.
// A reload that changes one is reported by name (log and metric), and the proxy
// keeps running on the value it started with.
export const RELOAD_META = "reload";
function restartRequired<T extends z.ZodType>(schema: T): T {
  return schema.meta({ [RELOAD_META]: "restart" });
}

const cidr = z.union([z.cidrv4(), z.cidrv6()]);

const dtabText = z.string().superRefine((text, ctx) => {
  try {
    const problem = unknownNameProblem(parseDtabSource(text), MESH_NAMERS);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: `bad dtab: ${problem}` });
  } catch (err) {
    if (err instanceof DtabError) ctx.addIssue({ code: "custom", message: `bad dtab: ${err.message}` });
    else throw err;
  }
});

const DEFAULT_DTAB = "/svc => /#/io.l5d.k8s/default/http;";

const outgoingSchema = z.strictObject({
  ip: restartRequired(ip.default("0.0.0.0").describe("Address the outgoing listener binds; local apps reach it on the node address (hostPort).")),
  port: restartRequired(port.default(4140).describe("Port for plain HTTP from local apps (`http_proxy=$NODE:4140`).")),
  dtab: dtabText
    .default(DEFAULT_DTAB)
    .describe("Routing table for the names local apps ask for (`/svc/<host>`)."),
  // Anyone who can reach the node's port 4140 can send l5d-dtab, so by default
  // only the node itself (loopback and HOST_IP) may re-route.
  dtabOverrideFrom: z
    .array(cidr)
    .default(["127.0.0.0/8", "::1/128"])
    .describe("CIDRs whose `l5d-dtab` header is honoured on 4140 (the node's HOST_IP always is); others are dropped and counted."),
});

const incomingSchema = z.strictObject({
  ip: restartRequired(ip.default("0.0.0.0").describe("Address the incoming (mutual TLS) listener binds.")),
  port: restartRequired(port.default(4141).describe("Port peers dial over mutual TLS 1.3; also the port this proxy dials on peers.")),
  dtab: dtabText
    .default(DEFAULT_DTAB)
    .describe("Routing table on the receiving side; bound endpoints are limited to this node."),
});

const adminSchema = z.strictObject({
  ip: restartRequired(ip.default("0.0.0.0").describe("Address of the read-only admin listener (probes, metrics).")),
  port: restartRequired(port.default(9990).describe("Admin port: /admin/ping, /admin/ready, /admin/dtab, /admin/delegate, /metrics.")),
});

const tlsSchema = z.strictObject({
  source: restartRequired(z
    .enum(["files", "identity-service"])
    .default("files")
    .describe("Where this proxy's certificate comes from: `files` (cert and key on disk, reloaded live: tests, benchmarks, your own PKI) or `identity-service` (a key made in memory at start, its certificate issued and renewed by the identity service; see `identity.*`).")),
  caBundle: restartRequired(z
    .string()
    .min(1)
    .default("/etc/zt-mesh/tls/ca-bundle.crt")
    .describe("PEM bundle of every CA the mesh trusts (old and new during a CA rotation); with `source: identity-service`, the trust anchors, which also authenticate the identity service.")),
  cert: restartRequired(z.string().min(1).default("/etc/zt-mesh/tls/tls.crt").describe("PEM mesh certificate, presented to peers as server and as client (`source: files` only).")),
  key: restartRequired(z.string().min(1).default("/etc/zt-mesh/tls/tls.key").describe("PEM private key of the mesh certificate (`source: files` only).")),
  identity: restartRequired(dnsName
    .default("mesh.zt-mesh.local")
    .describe("DNS subjectAltName every mesh certificate carries and every peer checks (`source: files` only; issued certificates carry `identity.trustDomain` names instead).")),
  reloadIntervalMs: restartRequired(millis
    .default(5000)
    .describe("How often the certificate and config files are re-read in case a change notification was missed.")),
});

/** The shortest leaf lifetime a proxy may ask for: renewal at two thirds of it must outpace clock skew and an outage of the service. */
const MIN_LEAF_LIFETIME_MS = 5 * 60_000;

const identitySchema = z.strictObject({
  url: restartRequired(z
    .url({ protocol: /^https$/ })
    .default("https://zt-mesh-identity.default.svc:8443")
    .describe("HTTPS address of the identity service; its certificate must chain to `tls.caBundle` and name the host.")),
  tokenFile: restartRequired(z
    .string()
    .min(1)
    .default("/var/run/secrets/zt-mesh/identity/token")
    .describe("The projected, audience-bound ServiceAccount token the proxy proves itself with; re-read for every request, as the kubelet rotates it.")),
  trustDomain: restartRequired(trustDomain
    .default("zt-mesh.local")
    .describe("SPIFFE trust domain of the mesh: peers must present `spiffe://<trustDomain>/ns/<kubernetes.meshNamespace>/node/<node>`.")),
  lifetimeMs: restartRequired(z
    .number()
    .int()
    .min(MIN_LEAF_LIFETIME_MS)
    .default(24 * 3600_000)
    .describe("Lifetime of the certificate to ask for (at least 5 minutes); the service may grant less. Renewed at about two thirds of the lifetime granted.")),
  retryMs: restartRequired(millis
    .default(1000)
    .describe("First delay before asking the service again after a failure; doubles up to 60 s, and while a certificate is held never beyond half its time left.")),
});

const kubernetesSchema = z.strictObject({
  kubeconfig: restartRequired(z.string().default("").describe("Path to a kubeconfig; empty means the pod's service account (in-cluster).")),
  meshNamespace: restartRequired(z.string().min(1).default("default").describe("Namespace of the mesh's own DaemonSet pods.")),
  meshPodSelector: restartRequired(z
    .string()
    .min(1)
    .default("app=l5d")
    .describe("Label selector of the mesh's DaemonSet pods (maps each node to its proxy).")),
  watchRetryMs: restartRequired(millis.default(1000).describe("Delay before re-opening a failed watch; doubles up to 30 s.")),
});

const limitsSchema = z.strictObject({
  maxHeaderBytes: restartRequired(z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(16 * 1024)
    .describe("Largest request head (HTTP/1.1) or header list (HTTP/2) accepted; larger gets 431.")),
  maxHeaderCount: restartRequired(z
    .number()
    .int()
    .min(16)
    .max(1000)
    .default(256)
    .describe("Most header fields a request may carry; more gets 431 on 4140 (and 4141 sizes its HTTP/2 limits to carry what 4140 accepts).")),
  maxRequestBodyBytes: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "Largest request body, in bytes; 0 means no limit. A larger Content-Length gets 413 at once; a chunked body that grows past it is cut off (the next hop is reset, the client gets 413 or a closed connection).",
    ),
  maxConcurrentStreams: restartRequired(z
    .number()
    .int()
    .min(1)
    .max(65535)
    .default(512)
    .describe("HTTP/2 streams a peer may have open at once on one connection.")),
  maxPendingRequests: z
    .number()
    .int()
    .min(1)
    .default(4096)
    .describe("Requests in flight per listener before new ones are shed with 503."),
  connectTimeoutMs: restartRequired(millis.default(3000).describe("Time to connect and complete the TLS handshake with a peer.")),
  requestTimeoutMs: millis.default(30_000).describe("Time from forwarding a request to receiving the response head; then 504."),
  headersTimeoutMs: restartRequired(millis
    .default(10_000)
    .describe("A client must send its complete request head within this time (slow-client defence).")),
  idleTimeoutMs: restartRequired(millis.default(60_000).describe("Idle keep-alive connections from apps are closed after this long.")),
  tunnelIdleTimeoutMs: millis
    .default(300_000)
    .describe("A CONNECT tunnel with no byte either way for this long is reset at both ends (a tunnel that never sends a byte included)."),
  peerSessionIdleTimeoutMs: millis
    .default(300_000)
    .describe("An HTTP/2 session from a peer on 4141 with no open stream for this long is closed (GOAWAY); the peer dials again when it needs to."),
  drainTimeoutMs: millis.default(20_000).describe("Time SIGTERM waits for in-flight requests before closing what is left."),
  maxHops: z
    .number()
    .int()
    .min(2)
    .max(64)
    .default(8)
    .describe("Mesh hops (Via entries) a request may take before it is refused as a routing loop."),
});

const retriesSchema = z.strictObject({
  budgetPercent: z
    .number()
    .min(0)
    .max(1)
    .default(0.2)
    .describe("Retries allowed as a fraction of recent requests, on top of the floor."),
  minRetriesPerSecond: z.number().int().min(0).default(10).describe("Retries always allowed per second, even with little traffic."),
  ttlMs: millis.default(10_000).describe("Window over which requests and retries are counted."),
});

const ejectionSchema = z.strictObject({
  consecutiveFailures: z
    .number()
    .int()
    .min(1)
    .default(5)
    .describe("Consecutive failures after which an endpoint is taken out of load balancing."),
  ejectMs: millis.default(10_000).describe("How long an ejected endpoint stays out."),
});

const logSchema = z.strictObject({
  level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Lowest level written (JSON lines on stdout)."),
});

export const configSchema = z.strictObject({
  outgoing: outgoingSchema.prefault({}),
  incoming: incomingSchema.prefault({}),
  admin: adminSchema.prefault({}),
  tls: tlsSchema.prefault({}),
  identity: identitySchema.prefault({}),
  kubernetes: kubernetesSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  retries: retriesSchema.prefault({}),
  ejection: ejectionSchema.prefault({}),
  log: logSchema.prefault({}),
});

/** A fully defaulted, validated configuration, as the proxy uses it. */
export type ProxyConfig = z.output<typeof configSchema>;
/** What a config file or the Pulumi components may say: every key optional. */
export type ProxyConfigInput = z.input<typeof configSchema>;
