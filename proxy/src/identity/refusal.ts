// Why the identity service did not sign: a small fixed set of reasons (they
// label a metric), each with the HTTP status a client sees and a sentence for
// the body and the log.

export type RefusalReason =
  | "not_found"
  | "method_not_allowed"
  | "too_large"
  | "rate_limited"
  | "bad_request"
  | "bad_csr"
  | "bad_csr_signature"
  | "unsupported_key"
  | "bad_lifetime"
  | "no_token"
  | "token_not_authenticated"
  | "wrong_audience"
  | "wrong_service_account"
  | "not_bound_to_pod"
  | "pod_not_found"
  | "pod_uid_mismatch"
  | "pod_not_running"
  | "not_a_mesh_proxy"
  | "wrong_node"
  | "token_review_unavailable"
  | "pod_lookup_unavailable"
  | "issuer_unavailable";

const STATUS: Record<RefusalReason, number> = {
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  rate_limited: 429,
  bad_request: 400,
  bad_csr: 400,
  bad_csr_signature: 400,
  unsupported_key: 400,
  bad_lifetime: 400,
  no_token: 401,
  token_not_authenticated: 401,
  wrong_audience: 401,
  wrong_service_account: 403,
  not_bound_to_pod: 403,
  pod_not_found: 403,
  pod_uid_mismatch: 403,
  pod_not_running: 403,
  not_a_mesh_proxy: 403,
  wrong_node: 403,
  // The service's own dependencies failing is not the client's fault.
  token_review_unavailable: 503,
  pod_lookup_unavailable: 503,
  issuer_unavailable: 503,
};

export class Refusal extends Error {
  override name = "Refusal";
  readonly status: number;

  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    this.status = STATUS[reason];
  }
}
