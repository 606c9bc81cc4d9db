// The hello/world demo: hello reaches world only through its node's proxy, and
// both are Services whose port the mesh's default dtab binds.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { IDeployment } from "kubernetes-models/apps/v1";
import type { IContainer, IService } from "kubernetes-models/v1";
import { HelloWorldDemo } from "../../components/demo";
import { defaultDtab } from "../../components/settings";
import { run, type Registration } from "./support/harness";
import { kubeObjects, theObject, validateAgainstSchema } from "./support/kube";

let regs: readonly Registration[];
const container = (app: string): IContainer => {
  const containers = theObject<IDeployment>(regs, "Deployment", app).spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1);
  return containers[0] as IContainer;
};

before(async () => {
  ({ registrations: regs } = await run(
    () => new HelloWorldDemo("demo", { namespace: "apps", image: "buoyantio/helloworld:0.1.6", proxyPort: 4140 }),
  ));
});

describe("HelloWorldDemo", () => {
  it("is a Deployment and a Service each for hello and world, in the demo namespace", async () => {
    const objects = kubeObjects(regs).map((o) => o.object);
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      "Deployment/hello",
      "Deployment/world",
      "Service/hello",
      "Service/world",
    ]);
    for (const o of objects) {
      assert.equal(o.metadata.namespace, "apps");
      await validateAgainstSchema(o);
    }
    const component = regs.find((r) => r.type === "zt-mesh:index:HelloWorldDemo");
    for (const r of regs.filter((r) => r.custom)) {
      assert.equal(r.parent, component?.urn);
      assert.ok(r.name.startsWith("demo-"), `${r.name} derives from the component name`);
    }
  });

  it("runs the classic helloworld image: world says world, hello says Hello and calls world", () => {
    assert.equal(container("world").image, "buoyantio/helloworld:0.1.6");
    assert.equal(container("hello").image, "buoyantio/helloworld:0.1.6");
    assert.deepEqual(container("world").args, ["-addr=:7778", "-text=world"]);
    assert.deepEqual(container("hello").args, ["-addr=:7777", "-text=Hello", "-target=world"]);
  });

  it("sends hello's calls through the proxy on its own node (http_proxy=$(HOST_IP):4140)", () => {
    const env = container("hello").env ?? [];
    const hostIp = env.findIndex((e) => e.name === "HOST_IP");
    const proxy = env.findIndex((e) => e.name === "http_proxy");
    assert.equal(env[hostIp]?.valueFrom?.fieldRef?.fieldPath, "status.hostIP");
    assert.equal(env[proxy]?.value, "$(HOST_IP):4140");
    assert.ok(hostIp < proxy, "HOST_IP must come first for Kubernetes to expand $(HOST_IP)");
    assert.deepEqual(container("world").env ?? [], [], "world only answers");
  });

  it("spreads hello and world over different nodes when it can, so their call crosses nodes", () => {
    for (const app of ["hello", "world"]) {
      const spec = theObject<IDeployment>(regs, "Deployment", app).spec?.template.spec;
      const terms = spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      assert.equal(terms.length, 1, app);
      const term = terms[0]!.podAffinityTerm;
      assert.equal(term.topologyKey, "kubernetes.io/hostname");
      const labels = theObject<IDeployment>(regs, "Deployment", app === "hello" ? "world" : "hello").spec?.template.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(term.labelSelector?.matchLabels ?? {})) {
        assert.equal(labels[k], v, `${app}'s anti-affinity selects the other app's pods`);
      }
    }
  });

  it("names each Service port http, which the default dtab /#/io.l5d.k8s/<ns>/http binds", () => {
    assert.match(defaultDtab("apps"), /\/#\/io\.l5d\.k8s\/apps\/http;/);
    for (const [app, port] of [["hello", 7777], ["world", 7778]] as const) {
      const svc = theObject<IService>(regs, "Service", app);
      assert.deepEqual(svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]), [["http", port, "http"]]);
      assert.deepEqual(container(app).ports?.map((p) => [p.name, p.containerPort]), [["http", port]]);
      const podLabels = theObject<IDeployment>(regs, "Deployment", app).spec?.template.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(svc.spec?.selector ?? {})) assert.equal(podLabels[k], v);
    }
  });

  it("follows the mesh's outgoing port when it is not 4140", async () => {
    const { registrations } = await run(
      () => new HelloWorldDemo("demo2", { namespace: "default", image: "hw:1", proxyPort: 5140 }),
    );
    const hello = kubeObjects(registrations).find((o) => o.object.kind === "Deployment" && o.object.metadata.name === "hello");
    const env = (hello?.object as unknown as IDeployment).spec?.template.spec?.containers[0]?.env ?? [];
    assert.equal(env.find((e) => e.name === "http_proxy")?.value, "$(HOST_IP):5140");
  });

  it("runs without root or capabilities", () => {
    for (const app of ["hello", "world"]) {
      const pod = theObject<IDeployment>(regs, "Deployment", app).spec?.template.spec;
      assert.equal(pod?.securityContext?.runAsNonRoot, true);
      assert.deepEqual(container(app).securityContext?.capabilities?.drop, ["ALL"]);
      assert.equal(container(app).securityContext?.allowPrivilegeEscalation, false);
    }
  });
});
