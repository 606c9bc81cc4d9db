// Watching the mesh: the proxy pods announce their metrics port, and as
// options a ServiceMonitor and the Grafana dashboard, whose queries use only
// metrics the proxy exports.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { IDaemonSet } from "kubernetes-models/apps/v1";
import type { IConfigMap, IService } from "kubernetes-models/v1";
import { DASHBOARD_FILE, GRAFANA_DASHBOARD_LABEL } from "../../components/monitoring";
import { loadSettings } from "../../components/settings";
import { ZtMesh } from "../../components/zt-mesh";
import { MeshMetrics } from "../../proxy/src/telemetry/metrics";
import { run } from "./support/harness";
import { objectsOfKind, theObject } from "./support/kube";
import { stackSource } from "./support/stack-config";

async function deploy(overrides: Record<string, unknown> = {}) {
  return (await run(() => new ZtMesh("zt-mesh", loadSettings(stackSource("dev", overrides))))).registrations;
}

interface ServiceMonitor {
  readonly metadata: { readonly namespace?: string };
  readonly spec: { readonly selector: { readonly matchLabels: Record<string, string> }; readonly endpoints: readonly { port: string; path: string }[] };
}

interface Dashboard {
  readonly panels: readonly { readonly title: string; readonly targets: readonly { readonly expr: string }[] }[];
}

describe("monitoring the mesh", () => {
  it("proxy pods carry the prometheus.io annotations for the admin port", async () => {
    const regs = await deploy({ adminPort: 9991 });
    const annotations = theObject<IDaemonSet>(regs, "DaemonSet").spec?.template.metadata?.annotations ?? {};
    assert.equal(annotations["prometheus.io/scrape"], "true");
    assert.equal(annotations["prometheus.io/port"], "9991");
    assert.equal(annotations["prometheus.io/path"], "/metrics");
  });

  it("creates no ServiceMonitor and no dashboard unless asked", async () => {
    const regs = await deploy();
    assert.equal(objectsOfKind(regs, "ServiceMonitor").length, 0);
    assert.equal(regs.some((r) => r.type === "zt-mesh:index:MeshMonitoring"), false);
  });

  it("a ServiceMonitor selects the mesh Service and scrapes its admin port", async () => {
    const regs = await deploy({ serviceMonitor: true });
    const [monitor] = objectsOfKind(regs, "ServiceMonitor") as unknown as ServiceMonitor[];
    assert.ok(monitor, "a ServiceMonitor");
    const service = theObject<IService>(regs, "Service", "l5d");
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata?.labels?.[k], v, `Service label ${k}`);
    const [endpoint] = monitor.spec.endpoints;
    assert.equal(endpoint?.path, "/metrics");
    const port = service.spec?.ports?.find((p) => p.name === endpoint?.port);
    assert.ok(port, `the Service has the port ${endpoint?.port}`);
    assert.equal(port.port, 9990);
    assert.equal(monitor.metadata.namespace, service.metadata?.namespace);
  });

  it("the dashboard ConfigMap holds the shipped dashboard, labelled for Grafana's sidecar", async () => {
    const regs = await deploy({ grafanaDashboard: true });
    const cm = objectsOfKind(regs, "ConfigMap").find((o) => o.metadata.name.endsWith("-dashboard")) as IConfigMap | undefined;
    assert.ok(cm, "a dashboard ConfigMap");
    for (const [k, v] of Object.entries(GRAFANA_DASHBOARD_LABEL)) assert.equal(cm.metadata?.labels?.[k], v);
    assert.equal(cm.data?.["zt-mesh.json"], readFileSync(DASHBOARD_FILE, "utf8"));
  });

  it("the dashboard's queries use only metrics the proxy exports", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
    const exported = new Set<string>();
    for (const line of (await new MeshMetrics({ processMetrics: false }).render()).split("\n")) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m === null) continue;
      exported.add(m[1]!);
      if (m[2] === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(`${m[1]!}${suffix}`);
    }
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\bmesh_[a-z_]+/g) ?? [])));
    assert.ok(used.size >= 8, `the dashboard queries ${used.size} metrics`);
    for (const name of used) assert.ok(exported.has(name), `${name} is exported by the proxy`);
    for (const title of ["Success rate (2xx–4xx over all)", "Requests per second", "Latency p50 / p95 / p99"]) {
      assert.ok(dashboard.panels.some((p) => p.title === title), title);
    }
  });
});
