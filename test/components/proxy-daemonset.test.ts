// The mesh's Kubernetes objects, as the dev stack renders them: what exists, how
// the pieces refer to each other, and what the proxy is allowed to do.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { IDaemonSet } from "kubernetes-models/apps/v1";
import type { IConfigMap, IContainer, ISecret, IService, IServiceAccount } from "kubernetes-models/v1";
import type { IClusterRole, IClusterRoleBinding, IRole, IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { ProxyDaemonSet, type ProxyDaemonSetArgs, renderProxiesConfig } from "../../components/proxy-daemonset";
import { PROXY_CONFIG_PATH, type ProxyConfigArgs, ProxyConfigError, TLS_SECRET_KEYS } from "../../components/proxy-config";
import { loadSettings, type Settings } from "../../components/settings";
import { ZtMesh } from "../../components/zt-mesh";
import { parseConfigText, type ProxyConfig } from "@zt-mesh/proxy-config";
import { isSecretEnvelope, plainMatches, run, valueOf, type Registration, type Run } from "./support/harness";
import { kubeObjects, parseEqualitySelector, theObject, validateAgainstSchema } from "./support/kube";
import { stackSource } from "./support/stack-config";

const settings: Settings = loadSettings(stackSource("dev"));

let deployed: Run<ZtMesh>;
/** The ProxyDaemonSet component's registrations; `all` adds the PKI and the demo. */
let regs: readonly Registration[];
let all: readonly Registration[];
let ds: IDaemonSet;
let proxy: IContainer;
let config: ProxyConfig;

before(async () => {
  deployed = await run(() => new ZtMesh("zt-mesh", settings));
  all = deployed.registrations;
  const mesh = all.find((r) => r.type === "zt-mesh:index:ProxyDaemonSet");
  assert.ok(mesh, "a ProxyDaemonSet component");
  regs = all.filter((r) => r === mesh || r.parent === mesh.urn);
  ds = theObject<IDaemonSet>(regs, "DaemonSet");
  const containers = ds.spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1, "one container per proxy pod");
  proxy = containers[0] as IContainer;
  config = parseConfigText(theObject<IConfigMap>(regs, "ConfigMap").data?.["config.yaml"] ?? "");
});

const podSpec = () => ds.spec?.template.spec ?? assert.fail("DaemonSet has no pod spec");
const podLabels = () => ds.spec?.template.metadata?.labels ?? {};

describe("ProxyDaemonSet resources", () => {
  it("are exactly the ServiceAccount, RBAC, Secret, ConfigMap, DaemonSet and Service, named after the component", () => {
    const mesh = regs.find((r) => r.type === "zt-mesh:index:ProxyDaemonSet");
    assert.ok(mesh);
    const children = regs.filter((r) => r.parent === mesh.urn);
    assert.deepEqual(
      children.map((r) => `${(r.inputs as { kind: string }).kind}/${(r.inputs as { metadata: { name: string } }).metadata.name}`).sort(),
      [
        "ClusterRole/zt-mesh-proxy-default",
        "ClusterRoleBinding/zt-mesh-proxy-default",
        "ConfigMap/zt-mesh-proxy-config",
        "DaemonSet/zt-mesh-proxy",
        "Role/zt-mesh-proxy",
        "RoleBinding/zt-mesh-proxy",
        "Secret/zt-mesh-proxy-tls",
        "Service/l5d",
        "ServiceAccount/zt-mesh-proxy",
      ],
    );
    for (const child of children) assert.ok(child.name.startsWith("zt-mesh-proxy-"), `${child.name} derives from the component name`);
  });

  it("are all in the mesh namespace (except the cluster-scoped RBAC)", () => {
    for (const { object } of kubeObjects(regs)) {
      if (object.kind.startsWith("Cluster")) assert.equal(object.metadata.namespace, undefined);
      else assert.equal(object.metadata.namespace, settings.namespace, `${object.kind} ${object.metadata.name}`);
    }
  });

  it("each match the Kubernetes API schema (kubernetes-models)", async () => {
    const objects = kubeObjects(regs);
    assert.ok(objects.length >= 9);
    for (const { object } of objects) await validateAgainstSchema(object);
  });

  it("include the namespace, first in line, only when asked to create it", async () => {
    const { registrations } = await run(() => new ProxyDaemonSet("m", meshArgs("m", { createNamespace: true }, { meshNamespace: "mesh-ns" })));
    const ns = registrations.find((r) => r.type === "kubernetes:core/v1:Namespace");
    assert.ok(ns);
    assert.deepEqual((ns.inputs as { metadata: { name: string } }).metadata.name, "mesh-ns");
    await validateAgainstSchema(ns.inputs as never);
    // Namespaced objects take their namespace from the Namespace's output, so they wait for it.
    for (const { registration, object } of kubeObjects(registrations)) {
      if (object.kind === "Namespace" || object.kind.startsWith("Cluster")) continue;
      assert.equal(object.metadata.namespace, "mesh-ns", `${object.kind} ${object.metadata.name}`);
      assert.ok(registration.dependencies.includes(ns.urn), `${object.kind} ${object.metadata.name} waits for the namespace`);
    }
    assert.equal(regs.filter((r) => r.type === "kubernetes:core/v1:Namespace").length, 0, "dev uses an existing namespace");
  });
});

describe("the mesh Secret", () => {
  it("is the Secret the DaemonSet mounts, read-only, where the config says the files are", () => {
    const secret = theObject<ISecret>(regs, "Secret");
    const volume = podSpec().volumes?.find((v) => v.secret !== undefined);
    assert.ok(volume?.secret, "a Secret volume");
    assert.equal(volume.secret.secretName, secret.metadata?.name);
    const mount = proxy.volumeMounts?.find((m) => m.name === volume.name);
    assert.ok(mount, "the Secret volume is mounted");
    assert.equal(mount.readOnly, true);
    assert.equal(mount.subPath, undefined, "a subPath mount would never see a rotated certificate");
    const mounted = Object.fromEntries((volume.secret.items ?? []).map((item) => [`${mount.mountPath}/${item.path}`, item.key]));
    assert.deepEqual(
      [config.tls.caBundle, config.tls.cert, config.tls.key].map((path) => mounted[path]),
      [TLS_SECRET_KEYS.caBundle, TLS_SECRET_KEYS.certificate, TLS_SECRET_KEYS.privateKey],
    );
    for (const key of Object.values(TLS_SECRET_KEYS)) assert.ok(secret.stringData?.[key], `Secret has ${key}`);
  });

  it("holds what the PKI issued: the CA bundle, the mesh certificate and its key", async () => {
    const secret = theObject<ISecret>(regs, "Secret");
    const pki = deployed.result.pki;
    assert.equal(secret.stringData?.[TLS_SECRET_KEYS.caBundle], await valueOf(pki.caBundlePem));
    assert.equal(secret.stringData?.[TLS_SECRET_KEYS.certificate], await valueOf(pki.certificatePem));
    assert.equal(secret.stringData?.[TLS_SECRET_KEYS.privateKey], await valueOf(pki.privateKeyPem));
    const signed = all.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert");
    assert.equal(secret.stringData?.[TLS_SECRET_KEYS.certificate], signed?.state["certPem"]);
  });

  it("is secret as a whole, and no private key reaches the engine in plain text anywhere", () => {
    const secret = regs.find((r) => r.type === "kubernetes:core/v1:Secret");
    assert.ok(secret);
    assert.ok(isSecretEnvelope(secret.raw["stringData"]), "stringData is sent as a secret");
    for (const r of all) {
      assert.deepEqual(plainMatches(r.raw, /PRIVATE KEY-----/), [], `plain private key in the inputs of ${r.type} ${r.name}`);
      assert.deepEqual(plainMatches(r.outputs ?? {}, /PRIVATE KEY-----/), [], `plain private key in the outputs of ${r.name}`);
    }
  });
});

describe("the proxy config", () => {
  it("is the ConfigMap the DaemonSet mounts read-only, at the path the proxy is started with", () => {
    const cm = theObject<IConfigMap>(regs, "ConfigMap");
    const volume = podSpec().volumes?.find((v) => v.configMap !== undefined);
    assert.equal(volume?.configMap?.name, cm.metadata?.name);
    const mount = proxy.volumeMounts?.find((m) => m.name === volume?.name);
    assert.ok(mount);
    assert.equal(mount.readOnly, true);
    assert.equal(mount.subPath, undefined, "a subPath mount would never see a config change");
    const item = volume?.configMap?.items?.[0];
    assert.equal(`${mount.mountPath}/${item?.path}`, PROXY_CONFIG_PATH);
    assert.equal(item?.key, "config.yaml");
    assert.deepEqual(proxy.command, ["node", "--max-semi-space-size=4", "dist/main.js"], "V8 flags on the command line");
    assert.deepEqual(proxy.args, ["--config", PROXY_CONFIG_PATH]);
  });

  it("passes the proxy's own parser and says what this stack configured", () => {
    assert.equal(config.outgoing.dtab, settings.proxy.config.args.outgoingDtab);
    assert.equal(config.incoming.dtab, settings.proxy.config.args.incomingDtab);
    assert.deepEqual(config.outgoing.dtabOverrideFrom, settings.proxy.config.args.dtabOverrideFrom);
    assert.equal(config.log.level, "debug");
    assert.equal(config.kubernetes.meshNamespace, settings.namespace);
  });

  it("names the identity the PKI put in the mesh certificate", () => {
    const csr = all.find((r) => r.type === "tls:index/certRequest:CertRequest");
    assert.deepEqual(csr?.inputs["dnsNames"], [config.tls.identity]);
    assert.equal(config.tls.identity, "mesh.default.zt-mesh.local");
  });

  it("selects exactly the pods this DaemonSet runs, so proxies find their peers", () => {
    const selector = parseEqualitySelector(config.kubernetes.meshPodSelector);
    assert.deepEqual(selector, {
      "app.kubernetes.io/name": "zt-mesh-proxy",
      "app.kubernetes.io/instance": "zt-mesh-proxy",
    });
    for (const [k, v] of Object.entries(selector)) {
      assert.equal(podLabels()[k], v, `pod label ${k}`);
      assert.equal(ds.spec?.selector.matchLabels?.[k], v, `DaemonSet selector ${k}`);
    }
  });

  it("listens on the ports the pod exposes", () => {
    const port = (name: string) => proxy.ports?.find((p) => p.name === name)?.containerPort;
    assert.equal(config.outgoing.port, port("outgoing"));
    assert.equal(config.incoming.port, port("incoming"));
    assert.equal(config.admin.port, port("admin"));
  });
});

describe("the DaemonSet", () => {
  it("exposes outgoing 4140 on the node's address, incoming 4141 and admin 9990 on the pod", () => {
    assert.deepEqual(
      proxy.ports?.map((p) => [p.name, p.containerPort, p.hostPort, p.protocol]),
      [
        ["outgoing", 4140, 4140, "TCP"],
        ["incoming", 4141, undefined, "TCP"],
        ["admin", 9990, undefined, "TCP"],
      ],
    );
    assert.equal(podSpec().hostNetwork, undefined, "pods keep their own network; only 4140 is on the node");
  });

  it("probes readiness on /admin/ready and liveness on /admin/ping of the admin port", () => {
    assert.deepEqual(proxy.readinessProbe?.httpGet, { path: "/admin/ready", port: "admin" });
    assert.deepEqual(proxy.livenessProbe?.httpGet, { path: "/admin/ping", port: "admin" });
  });

  it("tells the proxy its node, pod IP, host IP and namespace through the downward API", () => {
    const env = Object.fromEntries((proxy.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    assert.deepEqual(env, {
      NODE_NAME: "spec.nodeName",
      POD_IP: "status.podIP",
      HOST_IP: "status.hostIP",
      POD_NAMESPACE: "metadata.namespace",
    });
  });

  it("runs the configured image as a non-root user, read-only, without capabilities or privilege escalation", () => {
    assert.equal(proxy.image, settings.proxy.image);
    assert.equal(proxy.imagePullPolicy, "IfNotPresent");
    const pod = podSpec().securityContext;
    assert.equal(pod?.runAsNonRoot, true);
    assert.ok((pod?.runAsUser ?? 0) > 0);
    const c = proxy.securityContext;
    assert.equal(c?.readOnlyRootFilesystem, true);
    assert.equal(c?.allowPrivilegeEscalation, false);
    assert.deepEqual(c?.capabilities?.drop, ["ALL"]);
    assert.equal(c?.capabilities?.add, undefined);
    assert.notEqual(c?.privileged, true);
    for (const mount of proxy.volumeMounts ?? []) {
      if (mount.mountPath !== "/tmp") assert.equal(mount.readOnly, true, `${mount.mountPath} is read-only`);
    }
  });

  it("keeps the key file unreadable to other users", () => {
    const volume = podSpec().volumes?.find((v) => v.secret !== undefined);
    assert.equal(volume?.secret?.defaultMode, 0o440);
    assert.equal(podSpec().securityContext?.fsGroup, podSpec().securityContext?.runAsUser);
  });

  it("asks for the resources the stack configured", () => {
    assert.deepEqual(proxy.resources, { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "256Mi" } });
  });

  it("runs as the mesh ServiceAccount", () => {
    assert.equal(podSpec().serviceAccountName, theObject<IServiceAccount>(regs, "ServiceAccount").metadata?.name);
  });

  it("rolls one node at a time without surge (the hostPort allows one proxy per node)", () => {
    assert.deepEqual(ds.spec?.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  });

  it("does not restart pods when a certificate rotates: the proxy reloads the mounted files", () => {
    const annotations = ds.spec?.template.metadata?.annotations ?? {};
    for (const [key, value] of Object.entries(annotations)) {
      assert.doesNotMatch(key, /checksum|hash|cert/i, `pod template annotation ${key}`);
      assert.doesNotMatch(value, /BEGIN|[0-9a-f]{32}/, `pod template annotation ${key}`);
    }
    assert.deepEqual(plainMatches(ds, /CERTIFICATE/), [], "no certificate material in the DaemonSet");
  });
});

describe("the Service", () => {
  it("is named l5d with ports outgoing, incoming and admin, targeting the pod's named ports", () => {
    const svc = theObject<IService>(regs, "Service");
    assert.equal(svc.metadata?.name, "l5d");
    assert.deepEqual(
      svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [
        ["outgoing", 4140, "outgoing"],
        ["incoming", 4141, "incoming"],
        ["admin", 9990, "admin"],
      ],
    );
    for (const p of svc.spec?.ports ?? []) {
      assert.ok(proxy.ports?.some((cp) => cp.name === p.targetPort), `${p.targetPort} is a container port`);
    }
  });

  it("selects the proxy pods", () => {
    const svc = theObject<IService>(regs, "Service");
    const selector = svc.spec?.selector ?? {};
    assert.ok(Object.keys(selector).length > 0);
    for (const [k, v] of Object.entries(selector)) assert.equal(podLabels()[k], v, `pod label ${k}`);
  });

  it("has the type this stack configured", () => {
    assert.equal(theObject<IService>(regs, "Service").spec?.type, "NodePort");
  });
});

describe("RBAC", () => {
  const account = () => theObject<IServiceAccount>(regs, "ServiceAccount");
  const subject = () => ({ kind: "ServiceAccount", name: account().metadata?.name, namespace: settings.namespace });

  it("lets the proxy list and watch EndpointSlices cluster-wide, and nothing else", () => {
    const role = theObject<IClusterRole>(regs, "ClusterRole");
    assert.deepEqual(role.rules, [{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] }]);
    const binding = theObject<IClusterRoleBinding>(regs, "ClusterRoleBinding");
    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata?.name });
    assert.deepEqual(binding.subjects, [subject()]);
  });

  it("lets the proxy list and watch pods in its own namespace only, and nothing else", () => {
    const role = theObject<IRole>(regs, "Role");
    assert.equal(role.metadata?.namespace, settings.namespace);
    assert.deepEqual(role.rules, [{ apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] }]);
    const binding = theObject<IRoleBinding>(regs, "RoleBinding");
    assert.equal(binding.metadata?.namespace, settings.namespace);
    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata?.name });
    assert.deepEqual(binding.subjects, [subject()]);
  });

  it("grants nothing through any other Role or binding", () => {
    const kinds = kubeObjects(regs).map((o) => o.object.kind);
    for (const kind of ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]) {
      assert.equal(kinds.filter((k) => k === kind).length, 1, kind);
    }
  });
});

describe("the proxies' config", () => {
  it("is rendered, with the proxy's message naming the field it rejects, before anything is registered", async () => {
    const { registrations } = await run(() => {
      assert.throws(
        () => renderProxiesConfig("bad", { ...configArgs(), outgoingDtab: "/svc =>" }),
        (err: unknown) => err instanceof ProxyConfigError && /outgoing\.dtab: bad dtab/.test(err.message),
      );
    });
    assert.equal(registrations.length, 0);
  });

  it("names as peers the pods of the DaemonSet it was rendered for", () => {
    const { args } = renderProxiesConfig("m", configArgs());
    assert.equal(args.meshPodSelector, "app.kubernetes.io/name=zt-mesh-proxy,app.kubernetes.io/instance=m");
  });

  it("is refused by a ProxyDaemonSet of another name, whose pods it would not select", async () => {
    const { registrations } = await run(() => {
      assert.throws(() => new ProxyDaemonSet("other", meshArgs("m", {})), /rendered for m/);
    });
    assert.equal(registrations.length, 0);
  });
});

function configArgs(overrides: Partial<Omit<ProxyConfigArgs, "meshPodSelector">> = {}): Omit<ProxyConfigArgs, "meshPodSelector"> {
  return {
    ports: { outgoing: 4140, incoming: 4141, admin: 9990 },
    outgoingDtab: "/svc => /#/io.l5d.k8s/default/http;",
    incomingDtab: "/svc => /#/io.l5d.k8s/default/http;",
    dtabOverrideFrom: [],
    identity: "mesh.default.zt-mesh.local",
    meshNamespace: "default",
    logLevel: "info",
    ...overrides,
  };
}

function meshArgs(
  name: string,
  overrides: Partial<ProxyDaemonSetArgs>,
  config: Partial<Omit<ProxyConfigArgs, "meshPodSelector">> = {},
): ProxyDaemonSetArgs {
  return {
    config: renderProxiesConfig(name, configArgs(config)),
    createNamespace: false,
    image: "proxy:test",
    imagePullPolicy: "IfNotPresent",
    resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: {} },
    rolloutMaxUnavailable: 1,
    service: { name: "l5d", type: "ClusterIP" },
    tls: { caBundlePem: "ca", certificatePem: "cert", privateKeyPem: pulumi.secret("key") },
    ...overrides,
  };
}
