// How one forwarding attempt ended. The forwarder says which of five things
// happened; the layers around it decide what follows: the balancer whether the
// endpoint is to blame, the retry policy whether to try again, and the router,
// the outermost layer, what the client is told.
import type { ProxyError } from "./errors";
import type { ResponseSink } from "./exchange";

export type ForwardOutcome =
  /** The upstream's response went to the client whole. */
  | { readonly kind: "responded"; readonly status: number }
  /**
   * Nothing reached the upstream (refused, not connected, a closing
   * connection), so any method may be tried again. A closing connection is no
   * fault of the endpoint: it may be tried once more on a new one.
   */
  | { readonly kind: "not-sent"; readonly error: ProxyError; readonly endpointAtFault: boolean }
  /** The upstream may have processed it and no response head came: only an idempotent request may be tried again. */
  | { readonly kind: "lost-before-head"; readonly error: ProxyError }
  /** The response began and was cut off; the client has seen it cut. */
  | { readonly kind: "broken-after-head"; readonly status: number }
  /** The client left, or failed its own part (a stalled or oversized body): never the upstream's fault. */
  | { readonly kind: "client-gone"; readonly error?: ProxyError };

/** Whether the attempt counts against the endpoint (ejection, latency). */
export function endpointFailed(o: ForwardOutcome): boolean {
  switch (o.kind) {
    case "responded":
    case "client-gone":
      return false;
    case "not-sent":
      return o.endpointAtFault;
    case "lost-before-head":
    case "broken-after-head":
      return true;
  }
}

/**
 * Tells the client how it ended, if the forwarder has not already: the
 * outcome's error as the proxy's own answer (or a cut, once a response has
 * begun). Returns the status to count, 0 when the client got none.
 */
export function answerClient(sink: ResponseSink, o: ForwardOutcome): number {
  if (o.kind === "responded" || o.kind === "broken-after-head") return o.status;
  const { error } = o;
  if (error === undefined) return 0;
  const begun = sink.headersSent;
  sink.fail(error);
  return begun ? 0 : error.status;
}
