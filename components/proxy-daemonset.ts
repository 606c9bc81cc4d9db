// The mesh itself: one proxy per node, the identity it runs as, what it may read
// from the API server, its config and certificates, and a Service for its ports.
//
// No checksum annotation on the pod template, on purpose. The proxy watches its
// mounted config and certificates and reloads them live; Kubernetes swaps
// mounted ConfigMap and Secret files in place (whole-directory mounts, never
// subPath, which would freeze them). Restarting every proxy on each certificate
// rotation would drop in-flight requests for nothing. What the proxy cannot take
// live (ports, image, resources) is in the pod spec, and changing it rolls the
// DaemonSet anyway. For the in-place swap to happen the Kubernetes provider must
// update Secrets and ConfigMaps rather than replace them (index.ts sets
// enableSecretMutable and enableConfigMapMutable); a replacement would delete the
// objects the running pods mount.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  PROXY_CONFIG_DIR,
  PROXY_CONFIG_KEY,
  PROXY_CONFIG_PATH,
  PROXY_TLS_DIR,
  TLS_SECRET_KEYS,
  renderProxyConfig,
  type ProxyConfigArgs,
} from "./proxy-config";

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";
export type ImagePullPolicy = "Always" | "IfNotPresent" | "Never";

/** Kubernetes quantities; an omitted limit means none. */
export interface ProxyResources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly cpu?: string; readonly memory?: string };
}

export interface MeshTlsMaterial {
  readonly caBundlePem: pulumi.Input<string>;
  readonly certificatePem: pulumi.Input<string>;
  /** Kept secret end to end; a plain Input is wrapped in a secret. */
  readonly privateKeyPem: pulumi.Input<string>;
}

/** The config file of the proxies of one ProxyDaemonSet, as the proxy's own validator rendered it. */
export interface ProxiesConfig {
  /** The ProxyDaemonSet it is for: the file names that component's pods as the mesh's peers. */
  readonly daemonSetName: string;
  /** What it was rendered from: the namespace, ports and identity the DaemonSet is built with too. */
  readonly args: ProxyConfigArgs;
  readonly yaml: string;
}

/**
 * Renders the config of the ProxyDaemonSet `daemonSetName`, with the label
 * selector of its pods. Called before any resource exists, so a value the proxy
 * would reject fails with the proxy's message (ProxyConfigError) and registers nothing.
 */
export function renderProxiesConfig(daemonSetName: string, args: Omit<ProxyConfigArgs, "meshPodSelector">): ProxiesConfig {
  const full: ProxyConfigArgs = { ...args, meshPodSelector: labelSelector(proxyPodLabels(daemonSetName)) };
  return { daemonSetName, args: full, yaml: renderProxyConfig(full) };
}

export interface ProxyDaemonSetArgs {
  /** From renderProxiesConfig for this component's name. */
  readonly config: ProxiesConfig;
  /** Create the namespace (and delete it on `pulumi destroy`); otherwise it must exist. */
  readonly createNamespace: boolean;
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  readonly resources: ProxyResources;
  /** DaemonSet rolling update: how many nodes (or "N%") may be without a ready proxy. */
  readonly rolloutMaxUnavailable: number | string;
  readonly service: { readonly name: string; readonly type: ServiceType };
  readonly tls: MeshTlsMaterial;
}

/** The non-root user of the proxy image (the Dockerfile). */
export const PROXY_UID = 65532;

/**
 * V8 flags of the proxy process. V8 sizes the young generation from the
 * machine's memory, not the container's limit, so on a large node each
 * semi-space grows to 64 MiB under load: RSS mostly spent holding garbage, and
 * long scavenge pauses. Too small is wrong too: at 1 MiB the objects of requests
 * in flight are promoted, and GC took twice the CPU it takes at 4 MiB.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** What the proxy container runs, relative to the image's WORKDIR (the Dockerfile's ENTRYPOINT). */
export const PROXY_COMMAND: readonly string[] = ["node", ...PROXY_NODE_FLAGS, "dist/main.js"];
const CONTAINER = "proxy";

/** Labels on the proxy pods; the config's meshPodSelector is rendered from these. */
function proxyPodLabels(name: string): Record<string, string> {
  return { "app.kubernetes.io/name": "zt-mesh-proxy", "app.kubernetes.io/instance": name };
}

function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** The per-node proxies as one bundle: ServiceAccount, RBAC, Secret, ConfigMap, DaemonSet and Service. */
export class ProxyDaemonSet extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly configYaml: string;
  readonly serviceName: pulumi.Output<string>;
  readonly secretName: pulumi.Output<string>;
  readonly daemonSetName: pulumi.Output<string>;
  /** Label selector of the proxy pods, e.g. for `kubectl get pods -l`. */
  readonly podSelector: string;
  /** Labels of the mesh Service (its port `admin` serves /metrics). */
  readonly serviceLabels: Readonly<Record<string, string>>;

  constructor(name: string, args: ProxyDaemonSetArgs, opts?: pulumi.ComponentResourceOptions) {
    const { daemonSetName, yaml: configYaml } = args.config;
    if (daemonSetName !== name) {
      throw new Error(`ProxyDaemonSet ${name}: its config was rendered for ${daemonSetName}, whose pods it would take for its peers`);
    }
    const { meshNamespace, meshPodSelector: podSelector } = args.config.args;
    const podLabels = proxyPodLabels(name);
    // The alias keeps the resources of stacks that deployed this component under its former type.
    super("zt-mesh:index:ProxyDaemonSet", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: "zt-mesh:index:Mesh" }] });
    this.podSelector = podSelector;
    this.configYaml = configYaml;
    const labels = { ...podLabels, "app.kubernetes.io/part-of": "zt-mesh", "app.kubernetes.io/component": "proxy" };
    this.serviceLabels = labels;

    const ns = args.createNamespace
      ? new k8s.core.v1.Namespace(
          `${name}-namespace`,
          { metadata: { name: meshNamespace, labels: { "app.kubernetes.io/part-of": "zt-mesh" } } },
          { parent: this },
        )
      : undefined;
    // Through the Namespace's output when we own it, so everything waits for it.
    const namespace: pulumi.Input<string> = ns ? ns.metadata.name : meshNamespace;
    const meta = (objectName: string) => ({ name: objectName, namespace, labels });

    const account = new k8s.core.v1.ServiceAccount(`${name}-sa`, { metadata: meta(name) }, { parent: this });

    this.grantReads(name, meshNamespace, namespace, account, labels);

    const secret = new k8s.core.v1.Secret(
      `${name}-tls`,
      {
        metadata: meta(`${name}-tls`),
        type: "Opaque",
        stringData: pulumi.secret({
          [TLS_SECRET_KEYS.caBundle]: pulumi.output(args.tls.caBundlePem),
          [TLS_SECRET_KEYS.certificate]: pulumi.output(args.tls.certificatePem),
          [TLS_SECRET_KEYS.privateKey]: pulumi.secret(args.tls.privateKeyPem),
        }),
      },
      { parent: this },
    );
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: meta(`${name}-config`), data: { [PROXY_CONFIG_KEY]: this.configYaml } },
      { parent: this },
    );

    const daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-daemonset`,
      {
        metadata: meta(name),
        spec: {
          selector: { matchLabels: podLabels },
          updateStrategy: {
            type: "RollingUpdate",
            // A surge pod could never start: the old pod holds the hostPort.
            rollingUpdate: { maxUnavailable: args.rolloutMaxUnavailable, maxSurge: 0 },
          },
          template: {
            metadata: {
              labels,
              annotations: {
                "kubectl.kubernetes.io/default-container": CONTAINER,
                // The conventional scrape annotations, for Prometheus set up to read them.
                "prometheus.io/scrape": "true",
                "prometheus.io/port": String(args.config.args.ports.admin),
                "prometheus.io/path": "/metrics",
              },
            },
            spec: proxyPodSpec(args, { serviceAccount: account, configMap, secret }),
          },
        },
      },
      { parent: this },
    );

    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: meta(args.service.name),
        spec: {
          type: args.service.type,
          selector: podLabels,
          ports: (["outgoing", "incoming", "admin"] as const).map((port) => ({
            name: port,
            port: args.config.args.ports[port],
            targetPort: port,
            protocol: "TCP",
          })),
        },
      },
      { parent: this },
    );

    this.namespace = pulumi.output(namespace);
    this.serviceName = service.metadata.name;
    this.secretName = secret.metadata.name;
    this.daemonSetName = daemonSet.metadata.name;
    this.registerOutputs({
      namespace: this.namespace,
      serviceName: this.serviceName,
      secretName: this.secretName,
      daemonSetName: this.daemonSetName,
    });
  }

  /**
   * Exactly the reads the proxy makes: its peers (proxy pods in its own
   * namespace) and service endpoints (EndpointSlices in every namespace).
   */
  private grantReads(
    name: string,
    namespaceName: string,
    namespace: pulumi.Input<string>,
    account: k8s.core.v1.ServiceAccount,
    labels: Record<string, string>,
  ): void {
    const meta = { name, namespace, labels };
    // Peers: the proxy pods of this mesh, in this namespace only.
    const role = new k8s.rbac.v1.Role(
      `${name}-role`,
      { metadata: meta, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] }] },
      { parent: this },
    );
    new k8s.rbac.v1.RoleBinding(
      `${name}-rolebinding`,
      {
        metadata: meta,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace }],
      },
      { parent: this },
    );
    // Endpoints: services live in every namespace. Cluster-scoped names carry
    // the namespace so meshes in two namespaces do not overwrite each other.
    const clusterName = `${name}-${namespaceName}`;
    const clusterRole = new k8s.rbac.v1.ClusterRole(
      `${name}-clusterrole`,
      {
        metadata: { name: clusterName, labels },
        rules: [{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] }],
      },
      { parent: this },
    );
    new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-clusterrolebinding`,
      {
        metadata: { name: clusterName, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace }],
      },
      { parent: this },
    );
  }
}

/** The proxy pod: one per node, reading its config and certificates from mounts it cannot write. */
function proxyPodSpec(
  args: ProxyDaemonSetArgs,
  refs: { serviceAccount: k8s.core.v1.ServiceAccount; configMap: k8s.core.v1.ConfigMap; secret: k8s.core.v1.Secret },
): k8s.types.input.core.v1.PodSpec {
  const { ports } = args.config.args;
  const fromField = (envName: string, fieldPath: string) => ({ name: envName, valueFrom: { fieldRef: { fieldPath } } });
  const limits: Record<string, string> = {};
  if (args.resources.limits.cpu) limits["cpu"] = args.resources.limits.cpu;
  if (args.resources.limits.memory) limits["memory"] = args.resources.limits.memory;
  return {
    serviceAccountName: refs.serviceAccount.metadata.name,
    // Longer than the proxy's drain (limits.drainTimeoutMs, 20 s by default).
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      // Group-owns the mounted files so the key can be 0440, not world-readable.
      fsGroup: PROXY_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: CONTAINER,
        image: args.image,
        imagePullPolicy: args.imagePullPolicy,
        command: [...PROXY_COMMAND],
        args: ["--config", PROXY_CONFIG_PATH],
        ports: [
          // hostPort: applications reach their own node's proxy at the
          // node's address (http_proxy=$(HOST_IP):4140), the classic design.
          { name: "outgoing", containerPort: ports.outgoing, hostPort: ports.outgoing, protocol: "TCP" },
          // Peers dial the proxy pod's IP, found through the pod watch.
          { name: "incoming", containerPort: ports.incoming, protocol: "TCP" },
          { name: "admin", containerPort: ports.admin, protocol: "TCP" },
        ],
        env: [
          fromField("NODE_NAME", "spec.nodeName"),
          fromField("POD_IP", "status.podIP"),
          fromField("HOST_IP", "status.hostIP"),
          fromField("POD_NAMESPACE", "metadata.namespace"),
        ],
        readinessProbe: {
          httpGet: { path: "/admin/ready", port: "admin" },
          periodSeconds: 5,
          timeoutSeconds: 2,
          failureThreshold: 3,
        },
        livenessProbe: {
          httpGet: { path: "/admin/ping", port: "admin" },
          initialDelaySeconds: 10,
          periodSeconds: 10,
          timeoutSeconds: 2,
          failureThreshold: 3,
        },
        resources: { requests: { ...args.resources.requests }, limits },
        securityContext: {
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: [
          { name: "config", mountPath: PROXY_CONFIG_DIR, readOnly: true },
          { name: "tls", mountPath: PROXY_TLS_DIR, readOnly: true },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
    ],
    volumes: [
      {
        name: "config",
        configMap: { name: refs.configMap.metadata.name, items: [{ key: PROXY_CONFIG_KEY, path: PROXY_CONFIG_KEY }] },
      },
      {
        name: "tls",
        secret: {
          secretName: refs.secret.metadata.name,
          defaultMode: 0o440,
          items: Object.values(TLS_SECRET_KEYS).map((key) => ({ key, path: key })),
        },
      },
      // The root filesystem is read-only; Node still wants a writable tmpdir.
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
    ],
  };
}
