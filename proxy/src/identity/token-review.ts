// Who is asking: the proxy's projected ServiceAccount token, checked by the API
// server (TokenReview) for the service's audience. Only a mesh proxy's
// ServiceAccount, with the pod the kubelet bound the token to, passes.
import { type AuthenticationV1Api, type V1TokenReview } from "@kubernetes/client-node";
import { errorMessage } from "../telemetry/log";
import { Refusal } from "./refusal";

/** What a token proves, once the API server has vouched for it. */
export interface PodClaim {
  readonly podName: string;
  readonly podUid: string;
  /** Set by API servers that bind tokens to nodes too (Kubernetes 1.30 and later). */
  readonly nodeName: string | undefined;
}

export interface TokenPolicy {
  readonly audience: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

const EXTRA = "authentication.kubernetes.io/";

function single(extra: Record<string, string[]> | undefined, key: string): string | undefined {
  const values = extra?.[EXTRA + key];
  return values?.length === 1 && values[0] !== "" ? values[0] : undefined;
}

/** Reviews `token`; the pod it speaks for, or a Refusal naming what is wrong. */
export async function reviewToken(api: AuthenticationV1Api, token: string, policy: TokenPolicy): Promise<PodClaim> {
  let review: V1TokenReview;
  try {
    review = await api.createTokenReview({
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [policy.audience] } },
    });
  } catch (err) {
    throw new Refusal("token_review_unavailable", `could not review the token: ${errorMessage(err)}`);
  }
  const status = review.status;
  if (status?.authenticated !== true) {
    throw new Refusal("token_not_authenticated", `token not authenticated: ${status?.error ?? "no reason given"}`);
  }
  // The API server answers with the audiences the token is valid for among those asked.
  if (status.audiences !== undefined && !status.audiences.includes(policy.audience)) {
    throw new Refusal("wrong_audience", `token is not for audience ${policy.audience}`);
  }
  const expected = `system:serviceaccount:${policy.namespace}:${policy.serviceAccount}`;
  const user = status.user?.username ?? "";
  if (user !== expected) throw new Refusal("wrong_service_account", `token is of ${user || "no user"}, not ${expected}`);
  const extra = status.user?.extra;
  const podName = single(extra, "pod-name");
  const podUid = single(extra, "pod-uid");
  if (podName === undefined || podUid === undefined) {
    throw new Refusal("not_bound_to_pod", "token is not bound to a pod (use a projected ServiceAccount token)");
  }
  return { podName, podUid, nodeName: single(extra, "node-name") };
}
