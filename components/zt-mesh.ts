// One whole deployment of the mesh: PKI, the per-node proxies and, if asked for,
// the hello/world demo. index.ts builds one from stack config; being a component,
// two can live in one stack (different names and namespaces) without colliding.
import * as pulumi from "@pulumi/pulumi";
import { HelloWorldDemo } from "./demo";
import { ProxyDaemonSet } from "./proxy-daemonset";
import { MeshMonitoring } from "./monitoring";
import { MeshPki } from "./pki";
import type { Settings } from "./settings";
import { walkthrough } from "./walkthrough";

/** From loadSettings for this mesh's name. */
export type ZtMeshArgs = Omit<Settings, "kubeContext">;

/** The name of the ProxyDaemonSet of the ZtMesh `meshName`. */
export function proxiesName(meshName: string): string {
  return `${meshName}-proxy`;
}

export class ZtMesh extends pulumi.ComponentResource {
  readonly pki: MeshPki;
  readonly proxies: ProxyDaemonSet;
  readonly demo: HelloWorldDemo | undefined;
  readonly namespace: pulumi.Output<string>;
  /** Every trusted CA certificate, PEM. Public: clients need it to verify the mesh. */
  readonly caCertificate: pulumi.Output<string>;
  readonly meshCertificateExpiry: pulumi.Output<string>;
  readonly walkthrough: pulumi.Output<string>;

  constructor(name: string, args: ZtMeshArgs, opts?: pulumi.ComponentResourceOptions) {
    super("zt-mesh:index:ZtMesh", name, {}, opts);

    this.pki = new MeshPki(`${name}-pki`, args.pki, { parent: this });
    this.proxies = new ProxyDaemonSet(
      proxiesName(name),
      {
        config: args.proxy.config,
        createNamespace: args.createNamespace,
        image: args.proxy.image,
        imagePullPolicy: args.proxy.imagePullPolicy,
        resources: args.proxy.resources,
        rolloutMaxUnavailable: args.proxy.rolloutMaxUnavailable,
        service: args.service,
        tls: {
          caBundlePem: this.pki.caBundlePem,
          certificatePem: this.pki.certificatePem,
          privateKeyPem: this.pki.privateKeyPem,
        },
      },
      { parent: this },
    );
    if (args.monitoring.serviceMonitor || args.monitoring.grafanaDashboard) {
      new MeshMonitoring(
        `${name}-monitoring`,
        {
          namespace: this.proxies.namespace,
          serviceLabels: this.proxies.serviceLabels,
          metricsPortName: "admin",
          serviceMonitor: args.monitoring.serviceMonitor,
          grafanaDashboard: args.monitoring.grafanaDashboard,
        },
        { parent: this },
      );
    }
    this.demo = args.demo.enabled
      ? new HelloWorldDemo(
          `${name}-demo`,
          { namespace: args.demo.namespace, image: args.demo.image, proxyPort: args.proxy.config.args.ports.outgoing },
          // hello is useless until its node has a proxy, and the namespace may be the mesh's.
          { parent: this, dependsOn: [this.proxies] },
        )
      : undefined;

    this.namespace = this.proxies.namespace;
    this.caCertificate = this.pki.caBundlePem;
    this.meshCertificateExpiry = this.pki.certificateExpiry;
    this.walkthrough = pulumi
      .all([this.proxies.namespace, this.proxies.serviceName, this.proxies.secretName])
      .apply(([namespace, serviceName, secretName]) =>
        walkthrough({
          namespace,
          serviceName,
          secretName,
          identity: this.pki.identity,
          ports: args.proxy.config.args.ports,
          ...(args.demo.enabled ? { demoNamespace: args.demo.namespace } : {}),
        }),
      );
    this.registerOutputs({
      namespace: this.namespace,
      caCertificate: this.caCertificate,
      meshCertificateExpiry: this.meshCertificateExpiry,
      walkthrough: this.walkthrough,
    });
  }
}
