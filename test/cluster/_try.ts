import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { clusterUp, waitFor } from "./cluster";
import { httpGet } from "../support/net";
(async () => {
  const t0 = Date.now();
  const c = await clusterUp(["a", "b"], (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`));
  try {
    const core = c.kubeconfig.makeApiClient(CoreV1Api);
    const apps = c.kubeconfig.makeApiClient(AppsV1Api);
    const nodes = await core.listNode();
    console.log("nodes", nodes.items.map((n) => `${n.metadata!.name}:${n.status!.conditions!.find((x) => x.type === "Ready")!.status}`));
    await apps.createNamespacedDaemonSet({ namespace: "default", body: {
      metadata: { name: "world" },
      spec: { selector: { matchLabels: { app: "world" } }, template: { metadata: { labels: { app: "world" } }, spec: {
        containers: [{ name: "w", image: "buoyantio/helloworld:0.1.6", args: ["-addr=:7778", "-text=world"], ports: [{ name: "http", containerPort: 7778 }],
          readinessProbe: { httpGet: { path: "/", port: "http" } }, securityContext: { runAsUser: 65532, capabilities: { drop: ["ALL"] }, allowPrivilegeEscalation: false } }] } } } } });
    await core.createNamespacedService({ namespace: "default", body: { metadata: { name: "world" }, spec: { selector: { app: "world" }, ports: [{ name: "http", port: 7778 }] } } });
    await waitFor("world pods ready", async () => {
      const pods = await core.listNamespacedPod({ namespace: "default" });
      console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, pods.items.map((p) => `${p.metadata!.name}@${p.spec!.nodeName}:${p.status!.phase}/${p.status?.conditions?.find((x) => x.type === "Ready")?.status}`).join(" "));
      return pods.items.length === 2 && pods.items.every((p) => p.status?.conditions?.find((x) => x.type === "Ready")?.status === "True");
    }, 60000);
    const slices = await c.kubeconfig.makeApiClient((await import("@kubernetes/client-node")).DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: "default" });
    console.log("slices", JSON.stringify(slices.items.map((s) => ({ n: s.metadata!.name, eps: s.endpoints?.map((e) => `${e.addresses}@${e.nodeName}:${e.conditions?.ready}`), ports: s.ports }))));
    console.log("GET", (await httpGet("198.18.0.12", 7778, "/")).body);
  } catch (e) { console.log("ERR", (e as Error).message); }
  finally { await c.down(); console.log("down", ((Date.now() - t0) / 1000).toFixed(1)); }
})();
