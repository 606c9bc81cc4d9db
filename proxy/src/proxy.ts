// Builds a running proxy from a validated config: TLS material, discovery,
// routers and the three listeners. main.ts adds the process concerns (files,
// signals); tests start proxies through this directly.
import { K8S_NAMER_ID, type ProxyConfig } from "@zt-mesh/proxy-config";
import { LiveConfig, compileSettings } from "./config/live";
import { adminSummary } from "./admin/summary";
import { planReload } from "./config/reload";
import { EndpointIndex } from "./discovery/endpoint-index";
import { KubernetesDiscovery } from "./discovery/kubernetes-watch";
import { createEndpointAgent } from "./http/forward-http1";
import { hopHeaderSettings } from "./http/hop-limits";
import { PeerPool } from "./http/peer-pool";
import { AdminListener } from "./listeners/admin";
import { IncomingListener } from "./listeners/incoming";
import { OutgoingListener } from "./listeners/outgoing";
import { Balancer, type EjectionPolicy } from "./routing/balancer";
import { DtabHeaderCache } from "./routing/dtab-header";
import { DelegationExplainer } from "./routing/explain";
import { IncomingRouter } from "./routing/incoming-router";
import { KubernetesNamer } from "./routing/k8s-namer";
import { LogicalStep } from "./routing/logical-step";
import { OutgoingRouter } from "./routing/outgoing-router";
import { FROM_MESH_PEERS, FROM_TRUSTED_SOURCES } from "./routing/override-policy";
import { Resolver } from "./routing/resolve";
import { RetryBudget } from "./routing/retry-budget";
import { IdentityClient } from "./tls/identity-client";
import { nodeIdentityUri } from "./tls/identity-uri";
import { peerRule } from "./tls/peer-identity";
import { CertificateRenewal } from "./tls/renewal";
import { TlsStore, fileSource } from "./tls/store";
import { type Logger, createLogger } from "./telemetry/log";
import { MeshMetrics } from "./telemetry/metrics";

export interface ProxyOptions {
  readonly config: ProxyConfig;
  /** The Kubernetes node this proxy serves (downward API spec.nodeName). */
  readonly nodeName: string;
  /** The node's address (status.hostIP): local apps arrive from it, so it may send l5d-dtab. */
  readonly hostIp?: string;
  readonly log?: Logger;
}

export interface RunningProxy {
  readonly ports: { readonly outgoing: number; readonly incoming: number; readonly admin: number };
  readonly metrics: MeshMetrics;
  readonly tls: TlsStore;
  readonly index: EndpointIndex;
  /**
   * Applies a reloaded config: every live key at once; a restart-required key
   * keeps its running value, and is returned (`section.key`) and counted.
   */
  applyConfig(config: ProxyConfig): readonly string[];
  /** Stops accepting, lets in-flight requests finish (up to limits.drainTimeoutMs), then closes. */
  shutdown(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const { config, nodeName } = opts;
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = new MeshMetrics();
  const extraTrusted = opts.hostIp !== undefined && opts.hostIp !== "" ? [opts.hostIp] : [];
  const live = new LiveConfig(compileSettings(config, extraTrusted));

  const rule = peerRule(config);
  const own = { rule, node: nodeName };
  const ownIdentity = rule.kind === "shared-name" ? rule.identity : nodeIdentityUri(rule.trustDomain, rule.namespace, nodeName);

  const index = new EndpointIndex();
  const discovery = new KubernetesDiscovery({ config: config.kubernetes, index, log, metrics });
  discovery.start();

  const resolvers = {
    outgoing: new Resolver(new Map([[K8S_NAMER_ID, new KubernetesNamer(index)]])),
    incoming: new Resolver(new Map([[K8S_NAMER_ID, new KubernetesNamer(index, nodeName)]])),
  };
  let draining = false;
  let tls: TlsStore | undefined;
  let renewal: CertificateRenewal | undefined;
  let peerPool: PeerPool | undefined;
  const explainer = new DelegationExplainer(() => live.current, resolvers, new DtabHeaderCache(16));
  const admin = new AdminListener(
    live,
    metrics,
    {
      notReadyReason: () => {
        if (draining) return "draining for shutdown";
        if (tls === undefined) return `waiting for a certificate from the identity service (${renewal?.lastFailure ?? "asking"})`;
        return tls.certificateProblem() ?? (discovery.ready ? undefined : "waiting for the first Kubernetes sync");
      },
    },
    explainer,
    // The page reads the certificate and the peers only once the proxy has them.
    () => adminSummary({ nodeName, identity: ownIdentity, live, metrics, tls, index, peers: () => peerPool?.connections() ?? [] }),
  );
  // Probes reach admin while the first certificate is awaited, and see why the proxy is not ready.
  const adminPort = await admin.listen(config.admin.ip, config.admin.port);

  try {
    if (config.tls.source === "identity-service") {
      const client = new IdentityClient({
        url: config.identity.url,
        tokenFile: config.identity.tokenFile,
        caBundle: config.tls.caBundle,
        lifetimeMs: config.identity.lifetimeMs,
        timeoutMs: config.limits.connectTimeoutMs,
      });
      renewal = new CertificateRenewal(client, { caBundle: config.tls.caBundle, own, retryMs: config.identity.retryMs }, metrics, log);
      await renewal.first();
      tls = await TlsStore.open(renewal.source, log, metrics);
      renewal.start(tls);
    } else {
      tls = await TlsStore.open(fileSource(config.tls, own), log, metrics);
    }
  } catch (err) {
    admin.close();
    await discovery.stop();
    throw err;
  }
  tls.watchFiles(config.tls.reloadIntervalMs);

  const onEject = (key: string): void => {
    metrics.ejections.inc();
    log.warn("endpoint_ejected", { endpoint: key, forMs: live.current.config.ejection.ejectMs });
  };
  // Policies are read when they are used, so a reload changes them at once.
  const ejection = (): EjectionPolicy => live.current.config.ejection;
  const agent = createEndpointAgent();
  const dtabHeaders = new DtabHeaderCache();
  const pool = new PeerPool(
    tls,
    { rule, connectTimeoutMs: config.limits.connectTimeoutMs, headers: hopHeaderSettings(config.limits) },
    metrics,
    log,
  );
  peerPool = pool;

  const outgoingRouter = new OutgoingRouter({
    live,
    step: new LogicalStep(resolvers.outgoing, FROM_TRUSTED_SOURCES, dtabHeaders, metrics, log),
    index,
    balancer: new Balancer(ejection, onEject),
    budget: new RetryBudget(() => live.current.config.retries),
    pool,
    agent,
    metrics,
    log,
  });
  const incomingRouter = new IncomingRouter({
    live,
    step: new LogicalStep(resolvers.incoming, FROM_MESH_PEERS, dtabHeaders, metrics, log),
    balancer: new Balancer(ejection, onEject),
    agent,
    metrics,
    log,
    nodeName,
  });

  const outgoing = new OutgoingListener(live, outgoingRouter, metrics);
  const incoming = new IncomingListener(live, incomingRouter, tls, metrics, log);

  const ports = {
    admin: adminPort,
    incoming: await incoming.listen(config.incoming.ip, config.incoming.port),
    outgoing: await outgoing.listen(config.outgoing.ip, config.outgoing.port),
  };
  log.info("proxy_started", {
    node: nodeName,
    ...ports,
    tlsSource: config.tls.source,
    identity: ownIdentity,
  });
  const heldTls = tls;

  return {
    ports,
    metrics,
    tls: heldTls,
    index,
    applyConfig(next: ProxyConfig): readonly string[] {
      const { effective, restartPending } = planReload(live.current.config, next);
      live.current = compileSettings(effective, extraTrusted);
      log.setLevel(effective.log.level);
      metrics.restartPending.reset();
      for (const key of restartPending) metrics.restartPending.labels(key).set(1);
      return restartPending;
    },
    async shutdown(): Promise<void> {
      draining = true;
      const deadline = Date.now() + live.current.config.limits.drainTimeoutMs;
      log.info("proxy_draining", { inFlight: outgoing.inFlight + incoming.inFlight });
      await Promise.all([outgoing.drain(deadline), incoming.drain(deadline)]);
      await pool.close();
      await discovery.stop();
      renewal?.stop();
      heldTls.close();
      admin.close();
      agent.destroy();
      log.info("proxy_stopped", {});
    },
  };
}
