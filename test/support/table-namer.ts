// A namer over a fixed table of services, for resolution tests: the labels
// after /#/io.l5d.k8s are <namespace>/<port>/<service>, as the real namer's.
import type { Namer, Resolution } from "../../proxy/src/routing/resolve";

/** `services` maps "namespace/port/service" to endpoint keys ("ip:port"), all on node "n". */
export function tableNamer(services: Record<string, string[]>): Namer {
  return {
    lookup(rest): Resolution {
      const [ns, port, svc] = rest;
      const eps = services[`${ns}/${port}/${svc}`];
      if (eps === undefined) return { kind: "neg", reason: `service ${ns}/${svc} not found` };
      return {
        kind: "bound",
        dest: {
          kind: "service",
          id: `/#/io.l5d.k8s/${ns}/${port}/${svc}`,
          service: `${ns}/${svc}`,
          endpoints: eps.map((e) => ({ key: e, ip: e.split(":")[0]!, port: Number(e.split(":")[1]), nodeName: "n" })),
        },
      };
    },
  };
}
