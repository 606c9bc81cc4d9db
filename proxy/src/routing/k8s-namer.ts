// The io.l5d.k8s namer: /#/io.l5d.k8s/<namespace>/<port-name>/<service> binds to
// the ready endpoints of that Service port. The incoming side passes its node
// name so only endpoints on its own node are reachable through it.
import type { EndpointIndex, ServiceLookup } from "../discovery/endpoint-index";
import { K8S_NAMER_ID, type Path } from "@zt-mesh/proxy-config";
import type { Namer, Resolution } from "./resolve";

export class KubernetesNamer implements Namer {
  // Lookups are cached objects that change identity when the Service changes, so
  // the bound result can be cached against them without going stale.
  private readonly bound = new WeakMap<ServiceLookup, Resolution>();

  constructor(
    private readonly index: EndpointIndex,
    private readonly onlyNode?: string,
  ) {}

  lookup(rest: Path): Resolution {
    const [namespace, port, service] = rest;
    if (namespace === undefined || port === undefined || service === undefined) {
      return { kind: "neg", reason: `/#/${K8S_NAMER_ID} needs /<namespace>/<port>/<service>` };
    }
    const found = this.index.lookup(namespace, port, service);
    switch (found.kind) {
      case "no-service":
        return { kind: "neg", reason: `service ${namespace}/${service} not found` };
      case "no-port":
        return { kind: "neg", reason: `service ${namespace}/${service} has no port ${port}` };
      case "found": {
        let r = this.bound.get(found);
        if (r === undefined) {
          const endpoints =
            this.onlyNode === undefined ? found.endpoints : found.endpoints.filter((e) => e.nodeName === this.onlyNode);
          r = {
            kind: "bound",
            dest: {
              kind: "service",
              id: `/#/${K8S_NAMER_ID}/${namespace}/${port}/${service}`,
              service: `${namespace}/${service}`,
              endpoints,
            },
          };
          this.bound.set(found, r);
        }
        return r;
      }
    }
  }
}
