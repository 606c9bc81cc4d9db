// The checks of `zt-mesh check`, against a deployed mesh: each says what it
// found and, when it fails, what to do. They read the API server and each
// proxy's admin port; they change nothing.
import { X509Certificate } from "node:crypto";
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1DaemonSet,
  type V1Pod,
  VersionApi,
} from "@kubernetes/client-node";
import { type CheckResult, failed, passed } from "./result";
import { type ProxyView, proxyView } from "./proxy-admin";

export interface CheckOptions {
  readonly namespace: string;
  /** A production mesh must not expose its admin port outside the cluster. */
  readonly production: boolean;
}

/** The label every proxy pod of a ProxyDaemonSet carries. */
const PROXY_POD_LABEL = "app.kubernetes.io/name=zt-mesh-proxy";

/** Access the proxies must have (discovery), and access they must not. */
const NEEDED = [
  { verb: "list", group: "discovery.k8s.io", resource: "endpointslices", everywhere: true },
  { verb: "watch", group: "discovery.k8s.io", resource: "endpointslices", everywhere: true },
  { verb: "list", group: "", resource: "pods", everywhere: false },
  { verb: "watch", group: "", resource: "pods", everywhere: false },
] as const;
const FORBIDDEN = [
  { verb: "get", group: "", resource: "secrets", everywhere: false },
  { verb: "list", group: "", resource: "secrets", everywhere: true },
  { verb: "create", group: "", resource: "pods", everywhere: false },
  { verb: "update", group: "", resource: "configmaps", everywhere: false },
  { verb: "get", group: "", resource: "nodes", everywhere: true },
  { verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", everywhere: true },
] as const;

function podReady(pod: V1Pod): boolean {
  return pod.status?.phase === "Running" && (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function adminPort(ds: V1DaemonSet): number | undefined {
  for (const c of ds.spec?.template.spec?.containers ?? []) {
    const port = c.ports?.find((p) => p.name === "admin");
    if (port !== undefined) return port.containerPort;
  }
  return undefined;
}

export async function runChecks(kc: KubeConfig, opts: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const { namespace } = opts;

  try {
    const v = await kc.makeApiClient(VersionApi).getCode();
    results.push(passed("the Kubernetes API answers", `${kc.getCurrentCluster()?.server ?? "?"} (Kubernetes ${v.gitVersion})`));
  } catch (err) {
    results.push(failed("the Kubernetes API answers", (err as Error).message, "check the kubeconfig and context (--kubeconfig, --context)"));
    return results;
  }

  try {
    await core.readNamespace({ name: namespace });
    results.push(passed(`the mesh namespace ${namespace} exists`, "found"));
  } catch {
    results.push(failed(`the mesh namespace ${namespace} exists`, "not found", "deploy with `pulumi up`, or pass the mesh's namespace with --namespace"));
    return results;
  }

  const daemonSets = (await apps.listNamespacedDaemonSet({ namespace, labelSelector: PROXY_POD_LABEL })).items;
  const ds = daemonSets[0];
  if (ds === undefined) {
    results.push(failed("the proxies' DaemonSet exists", `no DaemonSet labelled ${PROXY_POD_LABEL} in ${namespace}`, "deploy with `pulumi up`"));
    return results;
  }
  const dsName = ds.metadata?.name ?? "?";
  const volumes = ds.spec?.template.spec?.volumes ?? [];
  const configMapName = volumes.find((v) => v.configMap !== undefined)?.configMap?.name;
  const secretName = volumes.find((v) => v.secret !== undefined)?.secret?.secretName;
  const missing: string[] = [];
  if (configMapName === undefined || !(await exists(() => core.readNamespacedConfigMap({ name: configMapName, namespace })))) {
    missing.push(`ConfigMap ${configMapName ?? "(none mounted)"}`);
  }
  let secretCert: X509Certificate | undefined;
  if (secretName === undefined) missing.push("Secret (none mounted)");
  else {
    try {
      const secret = await core.readNamespacedSecret({ name: secretName, namespace });
      const pem = secret.data?.["tls.crt"];
      if (pem !== undefined) secretCert = new X509Certificate(Buffer.from(pem, "base64"));
    } catch {
      missing.push(`Secret ${secretName}`);
    }
  }
  results.push(
    missing.length === 0
      ? passed("the DaemonSet, its ConfigMap and its TLS Secret exist", `DaemonSet ${dsName}, ConfigMap ${configMapName}, Secret ${secretName}`)
      : failed("the DaemonSet, its ConfigMap and its TLS Secret exist", `missing: ${missing.join(", ")}`, "run `pulumi up` to recreate what is missing"),
  );

  const selector = Object.entries(ds.spec?.selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  const nodes = (await core.listNode()).items.filter((n) => n.spec?.unschedulable !== true);
  const withoutProxy = nodes
    .map((n) => n.metadata?.name ?? "?")
    .filter((node) => !pods.some((p) => p.spec?.nodeName === node && podReady(p)));
  results.push(
    withoutProxy.length === 0
      ? passed("every schedulable node runs a ready proxy", `${nodes.length} nodes, ${pods.filter(podReady).length} ready proxies`)
      : failed(
          "every schedulable node runs a ready proxy",
          `no ready proxy on ${withoutProxy.join(", ")}`,
          `kubectl -n ${namespace} describe pods -l ${selector} shows why; a node without a proxy cannot send or receive mesh traffic`,
        ),
  );

  const images = new Set(pods.map((p) => p.spec?.containers[0]?.image ?? "?"));
  const revisions = new Set(pods.map((p) => p.metadata?.labels?.["controller-revision-hash"] ?? "?"));
  results.push(
    images.size <= 1 && revisions.size <= 1
      ? passed("every proxy runs the same version and pod spec", `${[...images].join("") || "(no pods)"}, revision ${[...revisions].join("") || "-"}`)
      : failed(
          "every proxy runs the same version and pod spec",
          `images ${[...images].join(", ")}; revisions ${[...revisions].join(", ")}`,
          `a rollout is in progress or stuck: kubectl -n ${namespace} rollout status daemonset/${dsName}`,
        ),
  );

  results.push(await certificateCheck(pods.filter(podReady), adminPort(ds), secretCert));
  results.push(await rbacCheck(kc, namespace, ds.spec?.template.spec?.serviceAccountName ?? "default"));
  results.push(await exposureCheck(core, namespace, ds, opts.production));
  return results;
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch {
    return false;
  }
}

/**
 * Each proxy serves an unexpired certificate with more than a third of its
 * life left (the mesh renews before that), the one in the Secret, and all of
 * them trust the same CAs.
 */
async function certificateCheck(pods: readonly V1Pod[], port: number | undefined, secretCert: X509Certificate | undefined): Promise<CheckResult> {
  const name = "certificates are valid, outside their renewal window, and every proxy trusts the same bundle";
  if (port === undefined) return failed(name, "the DaemonSet declares no admin port", "the proxy container needs a port named admin");
  const problems: string[] = [];
  const bundles = new Set<string>();
  for (const pod of pods) {
    const host = pod.status?.hostIP ?? pod.status?.podIP;
    const where = `${pod.spec?.nodeName ?? "?"}`;
    let view: ProxyView;
    try {
      view = await proxyView(host ?? "", port);
    } catch (err) {
      problems.push(`${where}: admin port unreachable (${(err as Error).message})`);
      continue;
    }
    bundles.add(view.cas.map((c) => c.serial).sort().join(","));
    if (view.certificate === null) problems.push(`${where}: no certificate yet`);
    else if (secretCert !== undefined && view.certificate.serial !== secretCert.serialNumber) {
      problems.push(`${where}: serves certificate ${view.certificate.serial}, not the Secret's ${secretCert.serialNumber}`);
    }
  }
  if (bundles.size > 1) problems.push(`the proxies trust ${bundles.size} different CA bundles`);
  if (secretCert !== undefined) {
    const from = Date.parse(secretCert.validFrom);
    const to = Date.parse(secretCert.validTo);
    const now = Date.now();
    if (now >= to) problems.push(`the mesh certificate expired at ${secretCert.validTo}`);
    else if (to - now < (to - from) / 3) problems.push(`the mesh certificate expires at ${secretCert.validTo}, inside its renewal window`);
  }
  if (problems.length > 0) {
    return failed(name, problems.join("; "), "`pulumi up` re-issues a certificate inside its renewal window; a proxy that serves an old one has not reloaded (see its log)");
  }
  const expiry = secretCert === undefined ? "" : `, the mesh certificate valid until ${secretCert.validTo}`;
  return passed(name, `${pods.length} proxies checked${expiry}`);
}

/** The proxies' ServiceAccount can do what discovery needs and nothing on the forbidden list. */
async function rbacCheck(kc: KubeConfig, namespace: string, account: string): Promise<CheckResult> {
  const name = "the proxies' RBAC is no wider than they need";
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const user = `system:serviceaccount:${namespace}:${account}`;
  const can = async (a: { verb: string; group: string; resource: string; everywhere: boolean }): Promise<boolean> => {
    const review = await authz.createSubjectAccessReview({
      body: {
        spec: {
          user,
          groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
          resourceAttributes: { verb: a.verb, group: a.group, resource: a.resource, ...(a.everywhere ? {} : { namespace }) },
        },
      },
    });
    return review.status?.allowed === true;
  };
  const describe = (a: { verb: string; group: string; resource: string }): string => `${a.verb} ${a.group === "" ? "" : `${a.group}/`}${a.resource}`;
  try {
    const lacking: string[] = [];
    const extra: string[] = [];
    for (const a of NEEDED) if (!(await can(a))) lacking.push(describe(a));
    for (const a of FORBIDDEN) if (await can(a)) extra.push(describe(a));
    if (lacking.length === 0 && extra.length === 0) return passed(name, `${user}: discovery reads only`);
    const detail = [lacking.length > 0 ? `cannot ${lacking.join(", ")}` : "", extra.length > 0 ? `can ${extra.join(", ")}` : ""].filter(Boolean).join("; ");
    return failed(name, `${user} ${detail}`, "the proxies need list and watch on EndpointSlices and on pods in the mesh namespace, nothing more: remove other bindings to this ServiceAccount");
  } catch (err) {
    return failed(name, `could not ask the API server: ${(err as Error).message}`, "the check needs permission to create SubjectAccessReviews");
  }
}

/** Whether a Service makes the admin port reachable from outside the cluster. */
async function exposureCheck(core: CoreV1Api, namespace: string, ds: V1DaemonSet, production: boolean): Promise<CheckResult> {
  const name = "the admin port is not exposed outside the cluster";
  const podLabels = ds.spec?.template.metadata?.labels ?? {};
  const services = (await core.listNamespacedService({ namespace })).items.filter((s) => {
    const sel = s.spec?.selector;
    return sel !== undefined && Object.entries(sel).every(([k, v]) => podLabels[k] === v);
  });
  const exposing = services.filter(
    (s) => s.spec?.type !== "ClusterIP" && (s.spec?.ports ?? []).some((p) => p.name === "admin" || p.targetPort === "admin"),
  );
  if (exposing.length === 0) return passed(name, "no Service exposes it beyond ClusterIP");
  const detail = exposing.map((s) => `Service ${s.metadata?.name} is ${s.spec?.type}`).join(", ");
  if (!production) return passed(name, `${detail}: acceptable outside production (--production makes this fail)`);
  return failed(name, detail, "set zt-mesh:serviceType ClusterIP for a production stack");
}
