// The names a dtab may point at: the namers every proxy runs (under /#/) and the
// system names that bind without one (under /$/). The grammar checks tables
// against these lists; the proxy implements exactly these.

/** linkerd 1's Kubernetes namer: /#/io.l5d.k8s/<namespace>/<port>/<service>. */
export const K8S_NAMER_ID = "io.l5d.k8s";

/** The namers every proxy runs, under /#/<id>. */
export const MESH_NAMERS: readonly string[] = [K8S_NAMER_ID];

/** The names that may follow /$/: Finagle's and linkerd 1's rewriting namers. */
export const SYSTEM_NAMES = [
  "fail",
  "nil",
  "inet",
  "fixedinet",
  "io.buoyant.rinet",
  "io.buoyant.hostportPfx",
  "io.buoyant.porthostPfx",
  "io.buoyant.http.domainToPathPfx",
  "io.buoyant.http.subdomainOfPfx",
] as const;

export type SystemName = (typeof SYSTEM_NAMES)[number];
