// Which node the asker serves: the pod its token is bound to, read back from
// the API server, must be a running mesh proxy, the same pod (uid) and, when
// the token names a node, on that node. The certificate names spec.nodeName.
import { ApiException, type CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { errorMessage } from "../telemetry/log";
import { isNodeName } from "../tls/identity-uri";
import { Refusal } from "./refusal";
import type { PodClaim } from "./token-review";

export interface PodPolicy {
  readonly namespace: string;
  /** Labels a mesh proxy pod carries, all of them. */
  readonly labels: ReadonlyMap<string, string>;
}

/** `k=v,k2=v2` as a map; the schema has already checked the form. */
export function parseEqualitySelector(selector: string): ReadonlyMap<string, string> {
  return new Map(
    selector.split(",").map((term) => {
      const eq = term.indexOf("=");
      return [term.slice(0, eq).trim(), term.slice(eq + 1).trim()] as const;
    }),
  );
}

/** The node the claimed pod runs on, or a Refusal. */
export async function proxyPodNode(api: CoreV1Api, claim: PodClaim, policy: PodPolicy): Promise<string> {
  let pod: V1Pod;
  try {
    pod = await api.readNamespacedPod({ name: claim.podName, namespace: policy.namespace });
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) {
      throw new Refusal("pod_not_found", `pod ${policy.namespace}/${claim.podName} does not exist`);
    }
    throw new Refusal("pod_lookup_unavailable", `could not read pod ${policy.namespace}/${claim.podName}: ${errorMessage(err)}`);
  }
  const name = `${policy.namespace}/${claim.podName}`;
  if (pod.metadata?.uid !== claim.podUid) {
    throw new Refusal("pod_uid_mismatch", `pod ${name} is not the pod the token was issued to (uid differs)`);
  }
  const labels = pod.metadata.labels ?? {};
  for (const [k, v] of policy.labels) {
    if (labels[k] !== v) throw new Refusal("not_a_mesh_proxy", `pod ${name} lacks the mesh proxy label ${k}=${v}`);
  }
  const phase = pod.status?.phase ?? "Unknown";
  if (phase !== "Running") throw new Refusal("pod_not_running", `pod ${name} is ${phase}, not Running`);
  const node = pod.spec?.nodeName ?? "";
  if (!isNodeName(node)) throw new Refusal("wrong_node", `pod ${name} has no valid node name`);
  if (claim.nodeName !== undefined && claim.nodeName !== node) {
    throw new Refusal("wrong_node", `token is bound to node ${claim.nodeName}, pod ${name} runs on ${node}`);
  }
  return node;
}
