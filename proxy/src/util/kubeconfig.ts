// Where the Kubernetes API is: a kubeconfig file (tests, running outside a
// cluster) or, when no path is given, the pod's own ServiceAccount.
import { KubeConfig } from "@kubernetes/client-node";

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path === "") kc.loadFromCluster();
  else kc.loadFromFile(path);
  return kc;
}
