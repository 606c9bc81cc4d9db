// The identity service in-process for tests: an anchor CA and an issuer under
// it, the service's config, and the API server it asks (the fake one, whose
// TokenReviews answer for the tokens registered here). Stopping and starting
// it again on the same port stands for an outage.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { type IdentityServiceConfig, type IdentityServiceConfigInput, parseIdentityServiceConfig } from "@zt-mesh/proxy-config";
import { IssuerStore } from "../../proxy/src/identity/issuer-store";
import { IdentityMetrics } from "../../proxy/src/identity/metrics";
import { IdentityServer } from "../../proxy/src/identity/server";
import { createLogger } from "../../proxy/src/telemetry/log";
import { type FakeKubeApi, type TokenInfo, podToken } from "./fake-kube-api";
import { freePort } from "./net";
import { type KeyPair, type TestCa, TestPki } from "./pki";

export const TRUST_DOMAIN = "mesh.test";
export const PROXY_SA = "zt-mesh-proxy";
export const AUDIENCE = "zt-mesh-identity";

export class IdentityFixture {
  server: IdentityServer | undefined;
  issuers: IssuerStore | undefined;
  metrics = new IdentityMetrics({ processMetrics: false });
  readonly logs: string[] = [];
  config!: IdentityServiceConfig;
  anchor!: TestCa;
  issuer!: KeyPair;

  private constructor(
    readonly pki: TestPki,
    readonly api: FakeKubeApi,
    readonly dir: string,
    private readonly kubeconfig: string,
  ) {}

  /** A service on 127.0.0.1, asking `api` (whose kubeconfig is at `kubeconfig`); `extra` overrides its config. */
  static async start(api: FakeKubeApi, kubeconfig: string, extra: IdentityServiceConfigInput = {}): Promise<IdentityFixture> {
    const f = new IdentityFixture(await TestPki.create(), api, await mkdtemp(join(tmpdir(), "zt-mesh-identity-")), kubeconfig);
    f.anchor = await f.pki.ca("anchor");
    f.issuer = await f.pki.intermediate(f.anchor, "issuer");
    await mkdir(join(f.dir, "issuer"));
    await writeFile(join(f.dir, "issuer", "tls.crt"), f.issuer.cert);
    await writeFile(join(f.dir, "issuer", "tls.key"), f.issuer.key);
    await writeFile(f.bundlePath, f.anchor.cert);
    const port = await freePort(["127.0.0.1"]);
    const admin = await freePort(["127.0.0.1"]);
    f.config = parseIdentityServiceConfig({
      ...extra,
      listen: { ip: "127.0.0.1", port, dnsNames: ["localhost"], ...extra.listen },
      admin: { ip: "127.0.0.1", port: admin, ...extra.admin },
      issuer: { cert: join(f.dir, "issuer", "tls.crt"), key: join(f.dir, "issuer", "tls.key"), reloadIntervalMs: 200 },
      trustDomain: TRUST_DOMAIN,
      meshNamespace: "default",
      proxyServiceAccount: PROXY_SA,
      proxyPodSelector: "app.kubernetes.io/name=zt-mesh-proxy",
      audience: AUDIENCE,
      kubeconfig,
    });
    await f.resume();
    return f;
  }

  get url(): string {
    return `https://localhost:${this.config.listen.port}`;
  }

  /** The trust bundle proxies are given: the anchor only. */
  get bundlePath(): string {
    return join(this.dir, "bundle.crt");
  }

  /** Registers a token with the API server and writes it where a proxy reads it; returns the file. */
  async tokenFile(name: string, token: string, info: TokenInfo): Promise<string> {
    this.api.tokens.set(token, info);
    const path = join(this.dir, `${name}.token`);
    await writeFile(path, token);
    return path;
  }

  /** The token of the mesh proxy pod `pod` on `node`. */
  proxyToken(pod: string, node: string): TokenInfo {
    return podToken("default", PROXY_SA, pod, node);
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.issuers?.close();
    this.server = undefined;
  }

  async resume(): Promise<void> {
    const log = createLogger("debug", (line) => this.logs.push(line));
    this.issuers = await IssuerStore.open(this.config.issuer, log, this.metrics);
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfig);
    const kube = { authentication: kc.makeApiClient(AuthenticationV1Api), core: kc.makeApiClient(CoreV1Api) };
    this.server = await IdentityServer.create(this.config, this.issuers, kube, this.metrics, log);
    await this.server.listen();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.pki.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}
