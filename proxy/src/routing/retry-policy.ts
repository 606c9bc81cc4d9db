// Whether a failed attempt may be tried again, and where. The outcome says what
// reached the upstream; the request says whether trying again is safe. Whether
// there is budget for it is the retry budget's to say.
import type { ReceivedRequest } from "../http/exchange";
import type { ForwardOutcome } from "../http/forward-outcome";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

export type RetryDecision = "no" | "same-endpoint" | "another-endpoint";

/**
 * `redialed`: this request has already been given one new connection to an
 * endpoint whose connection was closing.
 */
export function retryDecision(o: ForwardOutcome, received: ReceivedRequest, redialed: boolean): RetryDecision {
  if (o.kind !== "not-sent" && o.kind !== "lost-before-head") return "no";
  // Bodies are streamed, not kept: once any of it was read it cannot be sent again.
  if (received.hasBody && received.body.readableDidRead !== false) return "no";
  if (o.kind === "not-sent") return !o.endpointAtFault && !redialed ? "same-endpoint" : "another-endpoint";
  // It may have been processed: only a request that may be repeated goes again,
  // and not once the request's own time is up.
  return IDEMPOTENT.has(received.method) && o.error.kind !== "timeout" ? "another-endpoint" : "no";
}
