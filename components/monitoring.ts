// What Prometheus and Grafana need to watch the mesh, as options: a
// ServiceMonitor for the Prometheus Operator (the proxy pods also carry the
// conventional prometheus.io/* annotations, for scrapers that read those), and
// the shipped dashboard as a ConfigMap that Grafana's dashboard sidecar loads.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** The dashboard of the mesh's top-line metrics, as shipped in dashboards/. */
export const DASHBOARD_FILE = join(__dirname, "..", "dashboards", "zt-mesh.json");

/** The label Grafana's dashboard sidecar (the Grafana Helm chart's default) looks for. */
export const GRAFANA_DASHBOARD_LABEL = { grafana_dashboard: "1" } as const;

export interface MeshMonitoringArgs {
  readonly namespace: pulumi.Input<string>;
  /** Labels of the mesh Service, which the ServiceMonitor selects. */
  readonly serviceLabels: Readonly<Record<string, string>>;
  /** The Service port that serves /metrics. */
  readonly metricsPortName: string;
  /** Create a ServiceMonitor (needs the Prometheus Operator's CRDs in the cluster). */
  readonly serviceMonitor: boolean;
  /** Create the dashboard ConfigMap for Grafana's sidecar. */
  readonly grafanaDashboard: boolean;
}

export class MeshMonitoring extends pulumi.ComponentResource {
  constructor(name: string, args: MeshMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("zt-mesh:index:MeshMonitoring", name, {}, opts);
    const labels = { "app.kubernetes.io/part-of": "zt-mesh", "app.kubernetes.io/component": "monitoring" };
    if (args.serviceMonitor) {
      new k8s.apiextensions.CustomResource(
        `${name}-servicemonitor`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "ServiceMonitor",
          metadata: { name, namespace: args.namespace, labels },
          spec: {
            selector: { matchLabels: { ...args.serviceLabels } },
            endpoints: [{ port: args.metricsPortName, path: "/metrics", interval: "15s" }],
          },
        },
        { parent: this },
      );
    }
    if (args.grafanaDashboard) {
      new k8s.core.v1.ConfigMap(
        `${name}-dashboard`,
        {
          metadata: { name: `${name}-dashboard`, namespace: args.namespace, labels: { ...labels, ...GRAFANA_DASHBOARD_LABEL } },
          data: { "zt-mesh.json": readFileSync(DASHBOARD_FILE, "utf8") },
        },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}
