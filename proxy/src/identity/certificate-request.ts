// The body of POST /v1/certificates, parsed once into a typed request:
// {"csr": "<PEM PKCS#10>", "lifetimeMs": <optional integer>}.
import { Refusal } from "./refusal";

export interface CertificateRequest {
  readonly csrPem: string;
  readonly lifetimeMs: number | undefined;
}

/** Lifetimes below this are refused: the proxy could not renew in time. */
const MIN_REQUESTED_MS = 1000;

export function parseCertificateRequest(body: string): CertificateRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new Refusal("bad_request", 'body must be JSON: {"csr": "<PEM>", "lifetimeMs": <optional integer>}');
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Refusal("bad_request", "body must be a JSON object");
  const { csr, lifetimeMs, ...rest } = raw as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new Refusal("bad_request", `unknown field ${unknown[0]}`);
  if (typeof csr !== "string" || csr === "") throw new Refusal("bad_request", "csr must be a PEM string");
  if (lifetimeMs !== undefined && (typeof lifetimeMs !== "number" || !Number.isSafeInteger(lifetimeMs) || lifetimeMs < MIN_REQUESTED_MS)) {
    throw new Refusal("bad_lifetime", `lifetimeMs must be an integer of at least ${MIN_REQUESTED_MS}`);
  }
  return { csrPem: csr, lifetimeMs };
}

/** The bearer token of an Authorization header, or a Refusal. */
export function bearerToken(header: string | undefined): string {
  const m = header === undefined ? null : /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
  if (m === null) throw new Refusal("no_token", "Authorization: Bearer <projected ServiceAccount token> is required");
  return m[1]!;
}
