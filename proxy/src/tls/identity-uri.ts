// The identity a mesh proxy's issued certificate carries: one SPIFFE URI per
// node, `spiffe://<trust domain>/ns/<mesh namespace>/node/<node>`. The identity
// service writes it and peers read it, through these two functions only.

// RFC 1123 subdomain, as Kubernetes requires of node names: it stands in a URI
// path segment as it is, with nothing to escape.
const NODE_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `name` is a valid Kubernetes node name. */
export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

/** The URI subjectAltName of the mesh proxy of `node`. */
export function nodeIdentityUri(trustDomain: string, namespace: string, node: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/node/${node}`;
}

/** The node a URI names, if it is a mesh proxy's identity in this trust domain and namespace. */
export function nodeOfIdentityUri(uri: string, trustDomain: string, namespace: string): string | undefined {
  const prefix = `spiffe://${trustDomain}/ns/${namespace}/node/`;
  if (!uri.startsWith(prefix)) return undefined;
  const node = uri.slice(prefix.length);
  return isNodeName(node) ? node : undefined;
}
