// Stack config -> typed Settings, parsed once at the edge. Every key is declared
// in Pulumi.yaml with the same default as DEFAULTS below (a test holds the two
// together). Values arrive as Pulumi passes them to programs: strings, with
// integers and booleans spelled out and arrays as JSON.
//
// Everything that can be checked without creating a resource is checked here,
// including a dry render of the proxy config through the proxy's validator, so a
// bad value fails before the first resource is registered and the message names
// the stack key to fix.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ImagePullPolicy, ProxyResources, ServiceType } from "./mesh";
import { PkiArgsError, validatePkiArgs, type MeshPkiArgs } from "./pki";
import { ProxyConfigError, renderProxyConfig, type LogLevel, type MeshPorts } from "./proxy-config";

export const PROJECT = "zt-mesh";

/** What settings need from a config store. `new pulumi.Config()` is one; tests feed stack files. */
export interface ConfigSource {
  get(key: string): string | undefined;
}

export const DEFAULTS = {
  kubeContext: "",
  namespace: "default",
  createNamespace: false,
  meshIdentity: "",
  proxyImage: "",
  proxyImagePullPolicy: "IfNotPresent",
  outgoingPort: 4140,
  incomingPort: 4141,
  adminPort: 9990,
  outgoingDtab: "",
  incomingDtab: "",
  dtabOverrideFrom: ["127.0.0.0/8", "::1/128"],
  logLevel: "info",
  proxyCpuRequest: "50m",
  proxyMemoryRequest: "64Mi",
  proxyCpuLimit: "",
  proxyMemoryLimit: "256Mi",
  rolloutMaxUnavailable: "1",
  serviceName: "l5d",
  serviceType: "ClusterIP",
  caGenerations: ["g1"],
  caSigner: "",
  caValidityHours: 87600,
  certValidityHours: 720,
  certEarlyRenewalHours: 168,
  certRotation: "initial",
  demo: false,
  demoNamespace: "default",
  demoImage: "buoyantio/helloworld:0.1.6",
} as const satisfies Record<string, string | number | boolean | readonly string[]>;

export type ConfigKey = keyof typeof DEFAULTS;
type StringKey = { [K in ConfigKey]: (typeof DEFAULTS)[K] extends string ? K : never }[ConfigKey];

export interface Settings {
  /** kubeconfig context to deploy to; "" is the current context. */
  readonly kubeContext: string;
  readonly namespace: string;
  readonly createNamespace: boolean;
  readonly proxy: {
    readonly image: string;
    readonly imagePullPolicy: ImagePullPolicy;
    readonly ports: MeshPorts;
    readonly resources: ProxyResources;
    readonly rolloutMaxUnavailable: number | string;
    readonly outgoingDtab: string;
    readonly incomingDtab: string;
    readonly dtabOverrideFrom: readonly string[];
    readonly logLevel: LogLevel;
  };
  readonly service: { readonly name: string; readonly type: ServiceType };
  readonly pki: MeshPkiArgs;
  readonly demo: { readonly enabled: boolean; readonly namespace: string; readonly image: string };
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
export const PROXY_IMAGE_REPOSITORY = "ghcr.io/zt-mesh/proxy";

export function proxyVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(join(__dirname, "..", "proxy", "package.json"), "utf8"));
  const version = (pkg as { version?: unknown }).version;
  if (typeof version !== "string" || version === "") throw new Error("proxy/package.json has no version");
  return version;
}

export function defaultProxyImage(): string {
  return `${PROXY_IMAGE_REPOSITORY}:${proxyVersion()}`;
}

export function defaultIdentity(namespace: string): string {
  return `mesh.${namespace}.zt-mesh.local`;
}

/** Every `/svc/<name>` goes to the Service `<name>`'s port named `http` in `namespace`. */
export function defaultDtab(namespace: string): string {
  return `/svc => /#/io.l5d.k8s/${namespace}/http;`;
}

/** Which stack key each proxy config field comes from, for messages that say what to fix. */
export const PROXY_FIELD_KEYS: Readonly<Record<string, ConfigKey>> = {
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

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];
const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer"] as const satisfies readonly ServiceType[];
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const satisfies readonly ImagePullPolicy[];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

class Reader {
  constructor(private readonly source: ConfigSource) {}

  fail(key: ConfigKey, message: string): never {
    throw new SettingsError(`${PROJECT}:${key}`, message);
  }

  private raw(key: ConfigKey): string | undefined {
    return this.source.get(key);
  }

  string(key: StringKey): string {
    return this.raw(key) ?? DEFAULTS[key];
  }

  oneOf<T extends string>(key: ConfigKey, allowed: readonly T[]): T {
    const value = this.raw(key) ?? String(DEFAULTS[key]);
    const found = allowed.find((a) => a === value);
    if (found === undefined) this.fail(key, `"${value}" is not one of ${allowed.join(", ")}`);
    return found;
  }

  matching(key: ConfigKey, pattern: RegExp, what: string): string {
    const value = this.raw(key) ?? String(DEFAULTS[key]);
    if (!pattern.test(value)) this.fail(key, `"${value}" is not ${what}`);
    return value;
  }

  integer(key: ConfigKey): number {
    const raw = this.raw(key);
    if (raw === undefined) return DEFAULTS[key] as number;
    if (!/^-?[0-9]+$/.test(raw.trim())) this.fail(key, `"${raw}" is not a whole number`);
    return Number(raw);
  }

  boolean(key: ConfigKey): boolean {
    const raw = this.raw(key);
    if (raw === undefined) return DEFAULTS[key] as boolean;
    if (raw === "true") return true;
    if (raw === "false") return false;
    return this.fail(key, `"${raw}" is not true or false`);
  }

  strings(key: ConfigKey): string[] {
    const raw = this.raw(key);
    if (raw === undefined) return [...(DEFAULTS[key] as readonly string[])];
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

  quantity(key: ConfigKey, optional: boolean): string | undefined {
    const value = this.raw(key) ?? String(DEFAULTS[key]);
    if (value === "" && optional) return undefined;
    if (!QUANTITY.test(value)) this.fail(key, `"${value}" is not a Kubernetes quantity such as 100m, 1 or 64Mi`);
    return value;
  }
}

/** Reads, defaults and checks every key; throws SettingsError naming the key. */
export function loadSettings(source: ConfigSource): Settings {
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

  const settings: Settings = {
    kubeContext: r.string("kubeContext"),
    namespace,
    createNamespace: r.boolean("createNamespace"),
    proxy: {
      image,
      imagePullPolicy: r.oneOf("proxyImagePullPolicy", PULL_POLICIES),
      ports,
      resources: {
        requests: {
          cpu: r.quantity("proxyCpuRequest", false) as string,
          memory: r.quantity("proxyMemoryRequest", false) as string,
        },
        limits: { cpu: r.quantity("proxyCpuLimit", true), memory: r.quantity("proxyMemoryLimit", true) },
      },
      rolloutMaxUnavailable: maxUnavailable.endsWith("%") ? maxUnavailable : Number(maxUnavailable),
      outgoingDtab: r.string("outgoingDtab") || defaultDtab(demoNamespace),
      incomingDtab: r.string("incomingDtab") || defaultDtab(demoNamespace),
      dtabOverrideFrom: r.strings("dtabOverrideFrom"),
      logLevel: r.oneOf("logLevel", LOG_LEVELS),
    },
    service: {
      name: r.matching("serviceName", SERVICE_NAME, "a Service name (a DNS label starting with a letter)"),
      type: r.oneOf("serviceType", SERVICE_TYPES),
    },
    pki,
    demo: { enabled: r.boolean("demo"), namespace: demoNamespace, image: demoImage },
  };
  preflightProxyConfig(settings);
  return settings;
}

/** Renders the proxy config once with the stack's values, translating the proxy's field names into stack keys. */
function preflightProxyConfig(settings: Settings): void {
  try {
    renderProxyConfig({
      ports: settings.proxy.ports,
      outgoingDtab: settings.proxy.outgoingDtab,
      incomingDtab: settings.proxy.incomingDtab,
      dtabOverrideFrom: settings.proxy.dtabOverrideFrom,
      identity: settings.pki.identity,
      meshNamespace: settings.namespace,
      meshPodSelector: "app.kubernetes.io/name=zt-mesh-proxy",
      logLevel: settings.proxy.logLevel,
    });
  } catch (err) {
    if (!(err instanceof ProxyConfigError)) throw err;
    const first = err.problems[0] ?? "";
    const field = first.slice(0, first.indexOf(":"));
    const owner = Object.keys(PROXY_FIELD_KEYS)
      .filter((f) => field === f || field.startsWith(`${f}.`))
      .sort((a, b) => b.length - a.length)[0];
    const key = owner === undefined ? "(proxy config)" : `${PROJECT}:${PROXY_FIELD_KEYS[owner]}`;
    throw new SettingsError(key, `the proxy rejects it: ${err.problems.join("; ")}`);
  }
}
