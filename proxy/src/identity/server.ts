// The identity service: HTTPS (TLS 1.3) on one port for proxies asking for
// certificates, plain HTTP on another for probes and metrics. Cheap checks come
// first (rate, size, token present, CSR signature), the API server last, so
// junk costs the cluster nothing.
//
//   POST /v1/certificates   Authorization: Bearer <token>
//                           {"csr": "<PEM>", "lifetimeMs": 86400000}
//   200 {"certificate": "<leaf PEM>", "chain": "<issuer PEM>", "identity": "spiffe://...", "notAfter": "<ISO>"}
//   4xx/503 {"error": "<reason>", "message": "<why>"}
import type { AuthenticationV1Api, CoreV1Api } from "@kubernetes/client-node";
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer as createHttpServer } from "node:http";
import { type Server as HttpsServer, createServer as createHttpsServer } from "node:https";
import type { IdentityServiceConfig } from "@zt-mesh/proxy-config";
import { listen } from "../listeners/server-util";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import { nodeIdentityUri } from "../tls/identity-uri";
import { MIN_TLS_VERSION } from "../tls/material";
import { bearerToken, parseCertificateRequest } from "./certificate-request";
import { signLeaf, verifiedCsrKey } from "./csr-signing";
import type { IssuerStore } from "./issuer-store";
import type { IdentityMetrics } from "./metrics";
import { parseEqualitySelector, proxyPodNode } from "./proxy-pod";
import { RateLimiter } from "./rate-limit";
import { Refusal } from "./refusal";
import { type ServingCertificate, signServingCertificate } from "./serving-certificate";
import { reviewToken } from "./token-review";

export interface KubernetesApis {
  readonly authentication: AuthenticationV1Api;
  readonly core: CoreV1Api;
}

const CERTIFICATES_PATH = "/v1/certificates";

export class IdentityServer {
  private readonly api: HttpsServer;
  private readonly admin: HttpServer;
  private readonly limiter: RateLimiter;
  private readonly podLabels: ReadonlyMap<string, string>;
  private serving: ServingCertificate;
  private renewTimer: NodeJS.Timeout | undefined;
  private listening = false;

  private constructor(
    private readonly config: IdentityServiceConfig,
    private readonly issuers: IssuerStore,
    private readonly kube: KubernetesApis,
    readonly metrics: IdentityMetrics,
    private readonly log: Logger,
    serving: ServingCertificate,
  ) {
    this.serving = serving;
    this.limiter = new RateLimiter(config.limits);
    this.podLabels = parseEqualitySelector(config.proxyPodSelector);
    const { maxRequestBytes, requestTimeoutMs } = config.limits;
    this.api = createHttpsServer(
      {
        ...serving.options,
        minVersion: MIN_TLS_VERSION,
        maxHeaderSize: Math.min(maxRequestBytes, 8192),
        headersTimeout: requestTimeoutMs,
        requestTimeout: requestTimeoutMs,
      },
      (req, res) => void this.handle(req, res),
    );
    this.api.on("tlsClientError", (err: NodeJS.ErrnoException) => log.debug("tls_handshake_failed", { code: err.code }));
    this.admin = createHttpServer({ maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000 }, (req, res) => void this.handleAdmin(req, res));
    issuers.onChange(() => void this.resign());
    this.scheduleResign();
  }

  static async create(
    config: IdentityServiceConfig,
    issuers: IssuerStore,
    kube: KubernetesApis,
    metrics: IdentityMetrics,
    log: Logger,
  ): Promise<IdentityServer> {
    const serving = await signServingCertificate(issuers.current, config.listen.dnsNames);
    return new IdentityServer(config, issuers, kube, metrics, log, serving);
  }

  async listen(): Promise<{ api: number; admin: number }> {
    const ports = {
      admin: await listen(this.admin, this.config.admin.ip, this.config.admin.port),
      api: await listen(this.api, this.config.listen.ip, this.config.listen.port),
    };
    this.listening = true;
    return ports;
  }

  /** undefined when ready to sign; otherwise why not. */
  notReadyReason(now = Date.now()): string | undefined {
    if (!this.listening) return "not listening yet";
    return this.issuers.problem(now) ?? (now > this.serving.notAfter.getTime() ? "serving certificate expired" : undefined);
  }

  async close(): Promise<void> {
    this.listening = false;
    clearTimeout(this.renewTimer);
    const closed = [this.api, this.admin].map((s) => new Promise<void>((r) => s.close(() => r())));
    this.api.closeAllConnections();
    this.admin.closeAllConnections();
    await Promise.all(closed);
  }

  private scheduleResign(): void {
    clearTimeout(this.renewTimer);
    const left = this.serving.notAfter.getTime() - Date.now();
    this.renewTimer = setTimeout(() => void this.resign(), Math.max(1000, (left * 2) / 3));
    this.renewTimer.unref();
  }

  private async resign(): Promise<void> {
    try {
      this.serving = await signServingCertificate(this.issuers.current, this.config.listen.dnsNames);
      this.api.setSecureContext({ ...this.serving.options, minVersion: MIN_TLS_VERSION });
      this.log.info("serving_certificate_signed", { notAfter: this.serving.notAfter.toISOString() });
    } catch (err) {
      this.log.error("serving_certificate_failed", { error: errorMessage(err) });
    }
    this.scheduleResign();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remote = req.socket.remoteAddress ?? "unknown";
    try {
      const path = (req.url ?? "/").split("?")[0];
      if (path !== CERTIFICATES_PATH) throw new Refusal("not_found", `no API at ${path}; POST ${CERTIFICATES_PATH}`);
      if (req.method !== "POST") throw new Refusal("method_not_allowed", `${CERTIFICATES_PATH} takes POST only`);
      const limited = this.limiter.take(remote);
      if (limited !== undefined) {
        throw new Refusal("rate_limited", limited === "source" ? "too many requests from this address" : "too many requests; try again shortly");
      }
      const token = bearerToken(req.headers.authorization);
      const body = await readBounded(req, this.config.limits.maxRequestBytes);
      const answer = await this.issue(token, body);
      this.metrics.issued.inc();
      this.log.info("certificate_issued", { remote, node: answer.node, pod: answer.pod, notAfter: answer.notAfter });
      sendJson(res, 200, { certificate: answer.certificate, chain: answer.chain, identity: answer.identity, notAfter: answer.notAfter });
    } catch (err) {
      const refusal = err instanceof Refusal ? err : new Refusal("issuer_unavailable", `could not sign: ${errorMessage(err)}`);
      this.metrics.refusal(refusal.reason);
      this.log.warn("request_refused", { remote, reason: refusal.reason, status: refusal.status, message: refusal.message });
      const headers: Record<string, string> = refusal.reason === "rate_limited" ? { "retry-after": "1" } : {};
      // A refused body may still be arriving: do not read it, close after answering.
      if (refusal.reason === "too_large") headers.connection = "close";
      sendJson(res, refusal.status, { error: refusal.reason, message: refusal.message }, headers);
    }
  }

  private async issue(token: string, body: string): Promise<{ certificate: string; chain: string; identity: string; notAfter: string; node: string; pod: string }> {
    const request = parseCertificateRequest(body);
    const publicKey = await verifiedCsrKey(request.csrPem);
    const problem = this.issuers.problem();
    if (problem !== undefined) throw new Refusal("issuer_unavailable", problem);
    const { audience, meshNamespace: namespace, proxyServiceAccount: serviceAccount, trustDomain, maxLifetimeMs } = this.config;
    const claim = await reviewToken(this.kube.authentication, token, { audience, namespace, serviceAccount });
    const node = await proxyPodNode(this.kube.core, claim, { namespace, labels: this.podLabels });
    const identity = nodeIdentityUri(trustDomain, namespace, node);
    const issuer = this.issuers.current;
    const leaf = await signLeaf(issuer, {
      publicKey,
      commonName: node,
      uris: [identity],
      usage: "client-and-server",
      lifetimeMs: Math.min(request.lifetimeMs ?? maxLifetimeMs, maxLifetimeMs),
    });
    return { certificate: leaf.pem, chain: issuer.chainPem, identity, notAfter: leaf.notAfter.toISOString(), node, pod: claim.podName };
  }

  private async handleAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, "the admin interface is read-only\n");
    if (path === "/live") return sendText(res, 200, "live\n");
    if (path === "/ready") {
      const reason = this.notReadyReason();
      return reason === undefined ? sendText(res, 200, "ready\n") : sendText(res, 503, `not ready: ${reason}\n`);
    }
    if (path === "/metrics") {
      const body = await this.metrics.registry.metrics();
      res.writeHead(200, { "content-type": this.metrics.registry.contentType });
      res.end(body);
      return;
    }
    sendText(res, 404, `no admin page at ${path}; try /live, /ready, /metrics\n`);
  }
}

/** The request body as text, refused with too_large past `max` bytes (declared or sent). */
function readBounded(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > max) return Promise.reject(new Refusal("too_large", `request body over ${max} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.off("data", onData);
        req.pause();
        reject(new Refusal("too_large", `request body over ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.once("error", (err) => reject(new Refusal("bad_request", `request body not received: ${errorMessage(err)}`)));
  });
}

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + "\n";
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
