// The proxy's configuration schema: the single source of truth. The proxy parses
// its config file through it at start and on reload, and the Pulumi components
// render the ConfigMap through it, so a config the proxy would reject cannot be
// deployed. Every key has a default that is safe for production.
import { z } from "zod";
import { DtabError, parseDtab } from "../routing/dtab";

const port = z.number().int().min(1).max(65535);
const ip = z.union([z.ipv4(), z.ipv6()]);
const millis = z.number().int().positive();
const cidr = z.union([z.cidrv4(), z.cidrv6()]);

const dtabText = z.string().superRefine((text, ctx) => {
  try {
    parseDtab(text);
  } catch (err) {
    if (err instanceof DtabError) ctx.addIssue({ code: "custom", message: `bad dtab: ${err.message}` });
    else throw err;
  }
});

// Host names, as in a certificate's DNS subjectAltName.
const dnsName = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    message: "must be a lower-case DNS name",
  });

export const DEFAULT_DTAB = "/svc => /#/io.l5d.k8s/default/http;";

export const outgoingSchema = z.strictObject({
  ip: ip.default("0.0.0.0"),
  port: port.default(4140),
  /** Routing table for names that local applications ask for (`/svc/<host>`). */
  dtab: dtabText.default(DEFAULT_DTAB),
  /**
   * Sources whose `l5d-dtab` header is honoured. Anyone who can reach the node's
   * port 4140 can send one, so by default only the node itself may re-route.
   */
  dtabOverrideFrom: z.array(cidr).default(["127.0.0.0/8", "::1/128"]),
});

export const incomingSchema = z.strictObject({
  ip: ip.default("0.0.0.0"),
  port: port.default(4141),
  /** Routing table on the receiving side; bound endpoints are limited to this node. */
  dtab: dtabText.default(DEFAULT_DTAB),
});

export const adminSchema = z.strictObject({
  ip: ip.default("0.0.0.0"),
  port: port.default(9990),
});

export const tlsSchema = z.strictObject({
  /** PEM bundle of every CA the mesh currently trusts (old and new during a CA rotation). */
  caBundle: z.string().min(1).default("/etc/zt-mesh/tls/ca-bundle.crt"),
  cert: z.string().min(1).default("/etc/zt-mesh/tls/tls.crt"),
  key: z.string().min(1).default("/etc/zt-mesh/tls/tls.key"),
  /** DNS subjectAltName every mesh member's certificate carries and every peer checks. */
  identity: dnsName.default("mesh.zt-mesh.local"),
  /** How often the files are re-read in case a change notification was missed. */
  reloadIntervalMs: millis.default(5000),
});

export const kubernetesSchema = z.strictObject({
  /** Path to a kubeconfig; empty means the pod's service account (in-cluster). */
  kubeconfig: z.string().default(""),
  /** Namespace and label selector of the mesh's own DaemonSet pods (node -> peer address). */
  meshNamespace: z.string().min(1).default("default"),
  meshPodSelector: z.string().min(1).default("app=l5d"),
  /** Delay before re-opening a failed watch; doubles up to 30 s. */
  watchRetryMs: millis.default(1000),
});

export const limitsSchema = z.strictObject({
  maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  /** HTTP/2 streams a peer may open at once on one connection. */
  maxConcurrentStreams: z.number().int().min(1).max(65535).default(512),
  /** Requests in flight per listener before new ones are shed with 503. */
  maxPendingRequests: z.number().int().min(1).default(4096),
  connectTimeoutMs: millis.default(3000),
  /** Time from sending a request to receiving the response headers. */
  requestTimeoutMs: millis.default(30_000),
  /** A client must send its complete request head within this time (slow-client defence). */
  headersTimeoutMs: millis.default(10_000),
  /** Idle keep-alive connections from applications are closed after this long. */
  idleTimeoutMs: millis.default(60_000),
  /** Time SIGTERM waits for in-flight requests before closing what is left. */
  drainTimeoutMs: millis.default(20_000),
  /** Mesh hops a request may take before it is treated as a routing loop. */
  maxHops: z.number().int().min(2).max(64).default(8),
});

export const retriesSchema = z.strictObject({
  /** Retries allowed as a fraction of requests, on top of the floor below. */
  budgetPercent: z.number().min(0).max(1).default(0.2),
  minRetriesPerSecond: z.number().int().min(0).default(10),
  ttlMs: millis.default(10_000),
});

export const ejectionSchema = z.strictObject({
  consecutiveFailures: z.number().int().min(1).default(5),
  ejectMs: millis.default(10_000),
});

export const logSchema = z.strictObject({
  level: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export const configSchema = z.strictObject({
  outgoing: outgoingSchema.prefault({}),
  incoming: incomingSchema.prefault({}),
  admin: adminSchema.prefault({}),
  tls: tlsSchema.prefault({}),
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
