// Renders the proxy's config file through the proxy's own schema and validator,
// the same code the proxy runs when it starts, so a config the proxy would reject
// fails `pulumi preview` instead of crash-looping a DaemonSet.
import { ConfigError, renderConfig, type ConfigIssue, type ProxyConfigInput } from "@zt-mesh/proxy-config";

/** Where the DaemonSet mounts the ConfigMap, and the key the config lives under. */
export const PROXY_CONFIG_DIR = "/etc/zt-mesh/config";
export const PROXY_CONFIG_KEY = "config.yaml";
export const PROXY_CONFIG_PATH = `${PROXY_CONFIG_DIR}/${PROXY_CONFIG_KEY}`;

/** Where the DaemonSet mounts the mesh Secret, and the keys it holds. */
export const PROXY_TLS_DIR = "/etc/zt-mesh/tls";
export const TLS_SECRET_KEYS = {
  /** Every CA the mesh trusts, concatenated: old and new side by side during a CA rotation. */
  caBundle: "ca-bundle.crt",
  certificate: "tls.crt",
  privateKey: "tls.key",
} as const;

export type LogLevel = NonNullable<NonNullable<ProxyConfigInput["log"]>["level"]>;

export interface MeshPorts {
  /** Plain HTTP from applications on the same node (also a hostPort). */
  readonly outgoing: number;
  /** Mutual TLS from peer proxies. */
  readonly incoming: number;
  /** Health, readiness and metrics. */
  readonly admin: number;
}

export interface ProxyConfigArgs {
  readonly ports: MeshPorts;
  readonly outgoingDtab: string;
  readonly incomingDtab: string;
  /** CIDRs whose `l5d-dtab` header the outgoing listener honours. */
  readonly dtabOverrideFrom: readonly string[];
  /** DNS name every mesh certificate carries and every proxy checks on its peers. */
  readonly identity: string;
  /** Namespace and label selector of the proxy pods, which is how a proxy finds its peers. */
  readonly meshNamespace: string;
  readonly meshPodSelector: string;
  readonly logLevel: LogLevel;
}

/** The proxy rejected the config: `issues` says where, `problems` says it in words (dotted path first). */
export class ProxyConfigError extends Error {
  constructor(
    readonly problems: readonly string[],
    readonly issues: readonly ConfigIssue[],
  ) {
    super(`the proxy rejects this config: ${problems.join("; ")}`);
    this.name = "ProxyConfigError";
  }
}

function proxyConfigInput(args: ProxyConfigArgs): ProxyConfigInput {
  return {
    outgoing: {
      port: args.ports.outgoing,
      dtab: args.outgoingDtab,
      dtabOverrideFrom: [...args.dtabOverrideFrom],
    },
    incoming: { port: args.ports.incoming, dtab: args.incomingDtab },
    admin: { port: args.ports.admin },
    // The schema's defaults already point here; spelled out so the mount paths
    // in mesh.ts and the paths the proxy opens are visibly the same constants.
    tls: {
      caBundle: `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.caBundle}`,
      cert: `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.certificate}`,
      key: `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.privateKey}`,
      identity: args.identity,
    },
    kubernetes: { meshNamespace: args.meshNamespace, meshPodSelector: args.meshPodSelector },
    log: { level: args.logLevel },
  };
}

/** The text of `config.yaml`, fully defaulted. Throws ProxyConfigError naming each bad field. */
export function renderProxyConfig(args: ProxyConfigArgs): string {
  try {
    return renderConfig(proxyConfigInput(args));
  } catch (err) {
    if (err instanceof ConfigError) throw new ProxyConfigError(err.problems, err.issues);
    throw err;
  }
}
