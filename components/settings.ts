// Stack config -> typed Settings, parsed once at the edge. Every key and its
// default is declared in Pulumi.yaml, and read from there. Values arrive as
// Pulumi passes them to programs: strings, with integers and booleans spelled
// out and arrays as JSON.
//
// Everything that can be checked without creating a resource is checked here,
// including the proxies' config file, rendered here once through the proxy's own
// validator, so a bad value fails before the first resource is registered and the
// message names the stack key to fix.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type ImagePullPolicy, type ProxiesConfig, type ProxyResources, type ServiceType, renderProxiesConfig } from "./proxy-daemonset";
import { PkiArgsError, validatePkiArgs, type MeshPkiArgs } from "./pki";
import { ProxyConfigError, type LogLevel, type MeshPorts } from "./proxy-config";
import { proxiesName } from "./zt-mesh";

export const PROJECT = "zt-mesh";

/** What settings need from a config store. `new pulumi.Config()` is one; tests feed stack files. */
export interface ConfigSource {
  get(key: string): string | undefined;
}

/** A key as Pulumi.yaml declares it. */
interface DeclaredKey {
  readonly type: "string" | "integer" | "boolean" | "array";
  readonly default: unknown;
}

/** The program's project file: the one place each stack key and its default are declared. */
const PROJECT_FILE = join(__dirname, "..", "Pulumi.yaml");

let declared: ReadonlyMap<string, DeclaredKey> | undefined;

/** Pulumi.yaml's `config:` map, read once. */
function declaredKeys(): ReadonlyMap<string, DeclaredKey> {
  if (declared === undefined) {
    const project = parseYaml(readFileSync(PROJECT_FILE, "utf8")) as { config?: Record<string, DeclaredKey> };
    declared = new Map(Object.entries(project.config ?? {}));
  }
  return declared;
}

/** The default Pulumi.yaml declares for `key`, which must be of `type`. */
function declaredDefault(key: string, type: DeclaredKey["type"]): unknown {
  const d = declaredKeys().get(key);
  if (d === undefined) throw new Error(`${PROJECT}:${key} is read but not declared in Pulumi.yaml`);
  if (d.type !== type) throw new Error(`${PROJECT}:${key} is declared as ${d.type} in Pulumi.yaml, read as ${type}`);
  return d.default;
}

export interface Settings {
  /** kubeconfig context to deploy to; "" is the current context. */
  readonly kubeContext: string;
  readonly namespace: string;
  readonly createNamespace: boolean;
  readonly proxy: {
    readonly image: string;
    readonly imagePullPolicy: ImagePullPolicy;
    readonly resources: ProxyResources;
    readonly rolloutMaxUnavailable: number | string;
    /** The proxies' config file, for the mesh these settings were loaded for, and what it was rendered from (ports, dtabs, log level). */
    readonly config: ProxiesConfig;
  };
  readonly service: { readonly name: string; readonly type: ServiceType };
  readonly pki: MeshPkiArgs;
  readonly demo: { readonly enabled: boolean; readonly namespace: string; readonly image: string };
  readonly monitoring: { readonly serviceMonitor: boolean; readonly grafanaDashboard: boolean };
}

export class SettingsError extends Error {
  constructor(
    /** Full stack config key, e.g. `zt-mesh:outgoingDtab`. */
    readonly key: string,
    message: string,
  ) {
    super(`invalid stack config ${key}: ${message}`);
    this.name = "SettingsError";
  }
}

/** Where the proxy image is published; the tag is the proxy package's version. */
const PROXY_IMAGE_REPOSITORY = "ghcr.io/zt-mesh/proxy";

function proxyVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(join(__dirname, "..", "proxy", "package.json"), "utf8"));
  const version = (pkg as { version?: unknown }).version;
  if (typeof version !== "string" || version === "") throw new Error("proxy/package.json has no version");
  return version;
}

function defaultProxyImage(): string {
  return `${PROXY_IMAGE_REPOSITORY}:${proxyVersion()}`;
}

function defaultIdentity(namespace: string): string {
  return `mesh.${namespace}.zt-mesh.local`;
}

/** Every `/svc/<name>` goes to the Service `<name>`'s port named `http` in `namespace`. */
export function defaultDtab(namespace: string): string {
  return `/svc => /#/io.l5d.k8s/${namespace}/http;`;
}

/** Which stack key each proxy config field comes from, for messages that say what to fix. */
const PROXY_FIELD_KEYS: Readonly<Record<string, string>> = {
  "outgoing.port": "outgoingPort",
  "outgoing.dtab": "outgoingDtab",
  "outgoing.dtabOverrideFrom": "dtabOverrideFrom",
  "incoming.port": "incomingPort",
  "incoming.dtab": "incomingDtab",
  "admin.port": "adminPort",
  "tls.identity": "meshIdentity",
  "kubernetes.meshNamespace": "namespace",
  "log.level": "logLevel",
};

/** The stack key a proxy config field (or a field inside it) comes from. */
function stackKeyOf(path: readonly PropertyKey[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const key = PROXY_FIELD_KEYS[path.slice(0, n).map(String).join(".")];
    if (key !== undefined) return key;
  }
  return undefined;
}

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];
const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer"] as const satisfies readonly ServiceType[];
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const satisfies readonly ImagePullPolicy[];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

class Reader {
  constructor(private readonly source: ConfigSource) {}

  fail(key: string, message: string): never {
    throw new SettingsError(`${PROJECT}:${key}`, message);
  }

  private raw(key: string): string | undefined {
    return this.source.get(key);
  }

  string(key: string): string {
    return this.raw(key) ?? String(declaredDefault(key, "string"));
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    const value = this.string(key);
    const found = allowed.find((a) => a === value);
    if (found === undefined) this.fail(key, `"${value}" is not one of ${allowed.join(", ")}`);
    return found;
  }

  matching(key: string, pattern: RegExp, what: string): string {
    const value = this.string(key);
    if (!pattern.test(value)) this.fail(key, `"${value}" is not ${what}`);
    return value;
  }

  integer(key: string): number {
    const raw = this.raw(key) ?? String(declaredDefault(key, "integer"));
    if (!/^-?[0-9]+$/.test(raw.trim())) this.fail(key, `"${raw}" is not a whole number`);
    return Number(raw);
  }

  boolean(key: string): boolean {
    const raw = this.raw(key) ?? String(declaredDefault(key, "boolean"));
    if (raw === "true") return true;
    if (raw === "false") return false;
    return this.fail(key, `"${raw}" is not true or false`);
  }

  strings(key: string): string[] {
    const raw = this.raw(key) ?? JSON.stringify(declaredDefault(key, "array"));
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      this.fail(key, `${JSON.stringify(raw)} is not a list (set it with --path, or as a YAML list in the stack file)`);
    }
    if (!Array.isArray(value) || !value.every((v): v is string => typeof v === "string")) {
      this.fail(key, `${raw} is not a list of strings`);
    }
    return value;
  }

  quantity(key: string, optional: boolean): string | undefined {
    const value = this.string(key);
    if (value === "" && optional) return undefined;
    if (!QUANTITY.test(value)) this.fail(key, `"${value}" is not a Kubernetes quantity such as 100m, 1 or 64Mi`);
    return value;
  }
}

/**
 * Reads, defaults and checks every key for the ZtMesh named `meshName`; throws
 * SettingsError naming the key.
 */
export function loadSettings(source: ConfigSource, meshName = PROJECT): Settings {
  const r = new Reader(source);
  const namespace = r.matching("namespace", DNS_LABEL, "a Kubernetes namespace name (a DNS label)");
  const demoNamespace = r.matching("demoNamespace", DNS_LABEL, "a Kubernetes namespace name (a DNS label)");

  const ports: MeshPorts = {
    outgoing: r.integer("outgoingPort"),
    incoming: r.integer("incomingPort"),
    admin: r.integer("adminPort"),
  };
  if (new Set(Object.values(ports)).size !== 3) {
    r.fail("incomingPort", `outgoingPort, incomingPort and adminPort must differ (${Object.values(ports).join(", ")})`);
  }

  const maxUnavailable = r.matching("rolloutMaxUnavailable", /^([1-9][0-9]*|([1-9][0-9]?|100)%)$/, "a count (1 or more) or a percentage such as 25%");

  const caGenerations = r.strings("caGenerations");
  const pki = {
    identity: r.string("meshIdentity") || defaultIdentity(namespace),
    caGenerations,
    caSigner: r.string("caSigner") || (caGenerations.length === 1 ? caGenerations[0] : undefined),
    caValidityHours: r.integer("caValidityHours"),
    certValidityHours: r.integer("certValidityHours"),
    certEarlyRenewalHours: r.integer("certEarlyRenewalHours"),
    certRotation: r.string("certRotation"),
  };
  try {
    validatePkiArgs(pki);
  } catch (err) {
    if (err instanceof PkiArgsError) throw new SettingsError(`${PROJECT}:${err.field}`, err.reason);
    throw err;
  }

  const image = r.string("proxyImage") || defaultProxyImage();
  if (/\s/.test(image)) r.fail("proxyImage", `"${image}" is not an image reference`);
  const demoImage = r.string("demoImage");
  if (demoImage === "" || /\s/.test(demoImage)) r.fail("demoImage", `"${demoImage}" is not an image reference`);

  const outgoingDtab = r.string("outgoingDtab") || defaultDtab(demoNamespace);
  const incomingDtab = r.string("incomingDtab") || defaultDtab(demoNamespace);
  const dtabOverrideFrom = r.strings("dtabOverrideFrom");
  const logLevel = r.oneOf("logLevel", LOG_LEVELS);
  const config = renderForStack(proxiesName(meshName), {
    ports,
    outgoingDtab,
    incomingDtab,
    dtabOverrideFrom,
    identity: pki.identity,
    meshNamespace: namespace,
    logLevel,
  });

  return {
    kubeContext: r.string("kubeContext"),
    namespace,
    createNamespace: r.boolean("createNamespace"),
    proxy: {
      image,
      imagePullPolicy: r.oneOf("proxyImagePullPolicy", PULL_POLICIES),
      resources: {
        requests: {
          cpu: r.quantity("proxyCpuRequest", false) as string,
          memory: r.quantity("proxyMemoryRequest", false) as string,
        },
        limits: { cpu: r.quantity("proxyCpuLimit", true), memory: r.quantity("proxyMemoryLimit", true) },
      },
      rolloutMaxUnavailable: maxUnavailable.endsWith("%") ? maxUnavailable : Number(maxUnavailable),
      config,
    },
    service: {
      name: r.matching("serviceName", SERVICE_NAME, "a Service name (a DNS label starting with a letter)"),
      type: r.oneOf("serviceType", SERVICE_TYPES),
    },
    pki,
    demo: { enabled: r.boolean("demo"), namespace: demoNamespace, image: demoImage },
    monitoring: { serviceMonitor: r.boolean("serviceMonitor"), grafanaDashboard: r.boolean("grafanaDashboard") },
  };
}

/** Renders the proxies' config, translating the proxy's field names into stack keys. */
function renderForStack(daemonSetName: string, args: Parameters<typeof renderProxiesConfig>[1]): ProxiesConfig {
  try {
    return renderProxiesConfig(daemonSetName, args);
  } catch (err) {
    if (!(err instanceof ProxyConfigError)) throw err;
    const owner = err.issues.map((issue) => stackKeyOf(issue.path)).find((k) => k !== undefined);
    throw new SettingsError(owner === undefined ? "(proxy config)" : `${PROJECT}:${owner}`, `the proxy rejects it: ${err.problems.join("; ")}`);
  }
}
