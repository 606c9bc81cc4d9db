// HTTP probes, as the kubelet runs them: from the node, against the pod's IP.
import type { V1Container, V1Probe } from "@kubernetes/client-node";
import { request } from "node:http";
import { connect } from "node:net";

export function probePort(container: V1Container, probe: V1Probe): number | undefined {
  const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
  if (typeof port === "number") return port;
  const named = container.ports?.find((p) => p.name === port);
  return named?.containerPort ?? (port !== undefined && /^\d+$/.test(String(port)) ? Number(port) : undefined);
}

/** httpGet: a 2xx/3xx answer within the timeout; tcpSocket: a connection within it. */
export function runProbe(ip: string, container: V1Container, probe: V1Probe): Promise<boolean> {
  const port = probePort(container, probe);
  if (port === undefined) return Promise.resolve(true);
  if (probe.tcpSocket !== undefined) {
    return new Promise((resolve) => {
      const s = connect({ host: ip, port, timeout: (probe.timeoutSeconds ?? 1) * 1000 }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.on("error", () => resolve(false));
    });
  }
  if (probe.httpGet === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const req = request({ host: ip, port, path: probe.httpGet!.path ?? "/", agent: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.setTimeout((probe.timeoutSeconds ?? 1) * 1000, () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
