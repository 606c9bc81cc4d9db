// Whole deployments: the dev and prod stacks as their files configure them, two
// meshes side by side in one stack, and the outputs a user is handed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { IDaemonSet } from "kubernetes-models/apps/v1";
import type { IService } from "kubernetes-models/v1";
import { loadSettings } from "../../components/settings";
import { ZtMesh } from "../../components/zt-mesh";
import { plainMatches, run, valueOf, type Registration } from "./support/harness";
import { kubeObjects, objectsOfKind, theObject, validateAgainstSchema } from "./support/kube";
import { stackSource } from "./support/stack-config";

async function deploy(stack: string, overrides: Record<string, unknown> = {}) {
  return run(() => new ZtMesh("zt-mesh", loadSettings(stackSource(stack, overrides))), stack);
}

function signedCert(regs: readonly Registration[]): Record<string, unknown> {
  const cert = regs.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert");
  assert.ok(cert);
  return cert.inputs;
}

function proxyResources(regs: readonly Registration[]) {
  return theObject<IDaemonSet>(regs, "DaemonSet").spec?.template.spec?.containers[0]?.resources;
}

describe("dev and prod stacks", () => {
  it("dev runs the demo; prod does not", async () => {
    const dev = await deploy("dev");
    const prod = await deploy("prod");
    const deployments = (regs: readonly Registration[]) => objectsOfKind(regs, "Deployment").map((o) => o.metadata.name).sort();
    assert.deepEqual(deployments(dev.registrations), ["hello", "world"]);
    assert.deepEqual(deployments(prod.registrations), []);
    assert.equal(prod.registrations.some((r) => r.type === "zt-mesh:index:HelloWorldDemo"), false);
  });

  it("dev certificates are short-lived and prod's long-lived, each renewed ahead of expiry", async () => {
    const dev = signedCert((await deploy("dev")).registrations);
    const prod = signedCert((await deploy("prod")).registrations);
    assert.deepEqual([dev["validityPeriodHours"], dev["earlyRenewalHours"]], [24, 8]);
    assert.deepEqual([prod["validityPeriodHours"], prod["earlyRenewalHours"]], [2160, 720]);
  });

  it("dev asks for little; prod reserves more and sets CPU and memory limits", async () => {
    assert.deepEqual(proxyResources((await deploy("dev")).registrations), {
      requests: { cpu: "10m", memory: "32Mi" },
      limits: { memory: "256Mi" },
    });
    assert.deepEqual(proxyResources((await deploy("prod")).registrations), {
      requests: { cpu: "250m", memory: "128Mi" },
      limits: { cpu: "1", memory: "512Mi" },
    });
  });

  it("dev exposes the mesh Service on node ports; prod keeps it (and admin) inside the cluster", async () => {
    const type = (regs: readonly Registration[]) => theObject<IService>(regs, "Service", "l5d").spec?.type;
    assert.equal(type((await deploy("dev")).registrations), "NodePort");
    assert.equal(type((await deploy("prod")).registrations), "ClusterIP");
  });

  it("prod creates and uses its own namespace; dev uses default", async () => {
    const prod = await deploy("prod");
    const ns = objectsOfKind(prod.registrations, "Namespace");
    assert.deepEqual(ns.map((o) => o.metadata.name), ["zt-mesh"]);
    for (const { object } of kubeObjects(prod.registrations)) {
      if (!["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(object.kind)) {
        assert.equal(object.metadata.namespace, "zt-mesh", `${object.kind} ${object.metadata.name}`);
      }
    }
    assert.equal(await valueOf(prod.result.namespace), "zt-mesh");
    const dev = await deploy("dev");
    assert.deepEqual(objectsOfKind(dev.registrations, "Namespace"), []);
    assert.equal(await valueOf(dev.result.namespace), "default");
  });

  for (const stack of ["dev", "prod"]) {
    it(`${stack}: every Kubernetes object matches the Kubernetes API schema`, async () => {
      const { registrations } = await deploy(stack);
      for (const { object } of kubeObjects(registrations)) await validateAgainstSchema(object);
    });

    it(`${stack}: no private key reaches the engine outside a secret`, async () => {
      const { registrations } = await deploy(stack);
      for (const r of registrations) {
        assert.deepEqual(plainMatches(r.raw, /PRIVATE KEY/), [], `inputs of ${r.type} ${r.name}`);
        assert.deepEqual(plainMatches(r.outputs ?? {}, /PRIVATE KEY/), [], `outputs of ${r.type} ${r.name}`);
      }
    });
  }
});

describe("two meshes in one stack", () => {
  async function twoMeshes() {
    return run(() => [
      new ZtMesh("blue", loadSettings(stackSource("dev", { namespace: "blue" }), "blue")),
      new ZtMesh("green", loadSettings(stackSource("dev", { namespace: "green", demoNamespace: "green" }), "green")),
    ]);
  }

  it("have no URN in common", async () => {
    const { registrations } = await twoMeshes();
    const urns = registrations.map((r) => r.urn);
    const dupes = urns.filter((u, i) => urns.indexOf(u) !== i);
    assert.deepEqual(dupes, []);
    assert.ok(registrations.some((r) => r.urn.includes("blue")) && registrations.some((r) => r.urn.includes("green")));
  });

  it("have no Kubernetes object in common (namespace, kind, name), cluster-scoped RBAC included", async () => {
    const { registrations } = await twoMeshes();
    const keys = kubeObjects(registrations).map(
      ({ object }) => `${object.metadata.namespace ?? "(cluster)"}/${object.kind}/${object.metadata.name}`,
    );
    const dupes = keys.filter((k, i) => keys.indexOf(k) !== i);
    assert.deepEqual(dupes, []);
    assert.equal(objectsOfKind(registrations, "ClusterRole").length, 2);
  });

  it("each have their own CA, certificate and identity", async () => {
    const { result } = await twoMeshes();
    const [blue, green] = result as [ZtMesh, ZtMesh];
    assert.notEqual(await valueOf(blue.caCertificate), await valueOf(green.caCertificate));
    assert.equal(blue.pki.identity, "mesh.blue.zt-mesh.local");
    assert.equal(green.pki.identity, "mesh.green.zt-mesh.local");
  });
});

describe("outputs", () => {
  it("namespace, CA certificate, expiry and walkthrough are plain (not secret) and hold no key", async () => {
    const { result } = await deploy("dev");
    for (const [name, output] of Object.entries({
      namespace: result.namespace,
      caCertificate: result.caCertificate,
      meshCertificateExpiry: result.meshCertificateExpiry,
      walkthrough: result.walkthrough,
    })) {
      assert.equal(await pulumi.isSecret(output), false, `${name} is usable without --show-secrets`);
      assert.doesNotMatch(await valueOf(output), /PRIVATE KEY/, name);
    }
    assert.match(await valueOf(result.caCertificate), /^-----BEGIN CERTIFICATE-----/);
    assert.match(await valueOf(result.meshCertificateExpiry), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it("the walkthrough says the exact commands for this stack's names and ports", async () => {
    const { result, registrations } = await deploy("dev");
    const text = await valueOf(result.walkthrough);
    const secretName = objectsOfKind(registrations, "Secret")[0]?.metadata.name;
    assert.match(text, /^http_proxy=\$NODE_IP:4140 curl -s http:\/\/hello$/m);
    assert.ok(text.includes(`kubectl -n default get secret ${secretName} -o jsonpath='{.data.tls\\.key}' | base64 -d > tls.key`), text);
    assert.ok(text.includes("kubectl -n default port-forward service/l5d 4141:4141"), text);
    assert.ok(
      text.includes(
        "curl -s --cacert ca.crt --cert tls.crt --key tls.key --resolve mesh.default.zt-mesh.local:4141:127.0.0.1 " +
          "-H 'l5d-dtab: /svc=>/#/io.l5d.k8s/default/admin/l5d;' https://mesh.default.zt-mesh.local:4141/admin/ping",
      ),
      text,
    );
  });

  it("the walkthrough follows namespace, Service name and ports, and leaves out hello when the demo is off", async () => {
    const { result } = await deploy("prod", { serviceName: "mesh", incomingPort: 5141 });
    const text = await valueOf(result.walkthrough);
    assert.doesNotMatch(text, /curl -s http:\/\/hello/);
    assert.match(text, /demo is off/);
    assert.ok(text.includes("'l5d-dtab: /svc=>/#/io.l5d.k8s/zt-mesh/admin/mesh;' https://mesh.zt-mesh.zt-mesh.local:5141/admin/ping"), text);
    assert.ok(text.includes("kubectl -n zt-mesh port-forward service/mesh 5141:5141"), text);
  });
});
