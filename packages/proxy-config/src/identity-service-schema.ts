// The identity service's configuration: which tokens it believes, whose
// certificates it signs, for how long, and how much it answers. Rendered by the
// Pulumi components and parsed by the service through this one schema.
import { z } from "zod";
import { dnsName, ip, millis, port, trustDomain } from "./fields";

// A label selector of equality terms only (`k=v,k2=v2`), as the proxy pods carry.
const equalitySelector = z
  .string()
  .regex(/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*$/, {
    message: "must be equality terms, k=v[,k2=v2]",
  });

export const identityServiceSchema = z.strictObject({
  listen: z
    .strictObject({
      ip: ip.default("0.0.0.0").describe("Address the HTTPS API binds."),
      port: port.default(8443).describe("Port of the HTTPS API (TLS 1.3) proxies ask for certificates on."),
      dnsNames: z
        .array(dnsName)
        .min(1)
        .default(["zt-mesh-identity.default.svc"])
        .describe("DNS names of the service's own serving certificate, which it signs itself with the issuer key; proxies check the host of their `identity.url` against it."),
    })
    .prefault({}),
  admin: z
    .strictObject({
      ip: ip.default("0.0.0.0").describe("Address of the plain-HTTP admin listener."),
      port: port.default(9991).describe("Admin port: /ready, /live, /metrics."),
    })
    .prefault({}),
  issuer: z
    .strictObject({
      cert: z.string().min(1).default("/etc/zt-mesh/issuer/tls.crt").describe("PEM issuer (intermediate CA) certificate, optionally followed by the rest of its chain short of the anchor."),
      key: z.string().min(1).default("/etc/zt-mesh/issuer/tls.key").describe("PEM private key of the issuer (ECDSA P-256)."),
      reloadIntervalMs: millis.default(5000).describe("How often the issuer files are re-read in case a change notification was missed."),
    })
    .prefault({}),
  trustDomain: trustDomain
    .default("zt-mesh.local")
    .describe("SPIFFE trust domain of the identities signed."),
  meshNamespace: z.string().min(1).default("default").describe("Namespace of the mesh proxies' pods."),
  proxyServiceAccount: z.string().min(1).default("zt-mesh-proxy").describe("ServiceAccount of the mesh proxies; a token of any other is refused."),
  proxyPodSelector: equalitySelector
    .default("app.kubernetes.io/name=zt-mesh-proxy")
    .describe("Labels a pod must carry to be a mesh proxy."),
  audience: z.string().min(1).default("zt-mesh-identity").describe("Audience the proxies' projected tokens are bound to; the TokenReview asks for it."),
  kubeconfig: z.string().default("").describe("Path to a kubeconfig; empty means the pod's ServiceAccount (in-cluster)."),
  maxLifetimeMs: z
    .number()
    .int()
    .min(1000)
    .default(24 * 3600_000)
    .describe("Longest leaf lifetime granted (a proxy may ask for less, never more; never past the issuer's expiry). Values under a few minutes are for tests."),
  limits: z
    .strictObject({
      maxRequestBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024).describe("Largest request (head and body) accepted; larger gets 413."),
      perSourcePerSecond: z.number().positive().default(2).describe("Requests per second a source address may make, sustained."),
      perSourceBurst: z.number().int().min(1).default(10).describe("Requests a source address may make at once."),
      globalPerSecond: z.number().positive().default(50).describe("Requests per second the service answers in all, sustained."),
      globalBurst: z.number().int().min(1).default(200).describe("Requests the service answers at once in all."),
      requestTimeoutMs: millis.default(10_000).describe("A client must send its whole request within this time."),
    })
    .prefault({}),
  log: z
    .strictObject({ level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Lowest level written (JSON lines on stdout).") })
    .prefault({}),
});

/** The identity service's validated, defaulted configuration. */
export type IdentityServiceConfig = z.output<typeof identityServiceSchema>;
/** What an identity service config file may say: every key optional. */
export type IdentityServiceConfigInput = z.input<typeof identityServiceSchema>;
