// One forwarding attempt's state, shared by the HTTP/1.1 and HTTP/2
// forwarders: it settles once, with a ForwardOutcome, and clears its timer.
// It decides whose fault each ending is (the client's never counts against
// the upstream); subclasses say how to reset their upstream. It never answers
// the client itself: the router does, from the outcome.
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { ProxyError } from "./errors";
import type { AbortWatcher, ReceivedRequest, ResponseSink } from "./exchange";
import type { ForwardOutcome } from "./forward-outcome";
import { type RelayKind, type RelayWatcher, awaitingSender } from "./relay";

export type ForwardLimits = Pick<ProxyConfig["limits"], "requestTimeoutMs" | "maxRequestBodyBytes">;

function fireTimeout(attempt: ForwardAttempt): void {
  attempt.timedOut();
}

export abstract class ForwardAttempt implements AbortWatcher, RelayWatcher {
  settled = false;
  /** The upstream's status, once its response head has come. */
  status = 0;
  readonly timer: NodeJS.Timeout;
  readonly promise: Promise<ForwardOutcome>;
  private resolve!: (o: ForwardOutcome) => void;

  constructor(
    readonly received: ReceivedRequest,
    readonly sink: ResponseSink,
    readonly limits: ForwardLimits,
  ) {
    this.timer = setTimeout(fireTimeout, limits.requestTimeoutMs, this);
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  /** Names the upstream in errors, e.g. "peer 10.0.0.5:4141". */
  abstract get describe(): string;
  /** Cuts the request to the upstream off, so it is never taken as complete. */
  abstract resetUpstream(): void;

  /** No response head within requestTimeoutMs of this attempt's start. */
  timedOut(): void {
    const ms = this.limits.requestTimeoutMs;
    // A body still trickling in is the client's doing (408); the upstream is not blamed.
    const clientSlow = this.received.hasBody && awaitingSender(this.received.body);
    this.resetUpstream();
    if (clientSlow) {
      this.settle({
        kind: "client-gone",
        error: new ProxyError("client_timeout", `request body not received within ${ms} ms (limits.requestTimeoutMs)`),
      });
      return;
    }
    this.settle({ kind: "lost-before-head", error: new ProxyError("timeout", `timeout after ${ms} ms waiting for ${this.describe}`) });
  }

  clientGone(): void {
    this.resetUpstream();
    this.settle({ kind: "client-gone" });
  }

  relayEnded(kind: RelayKind): void {
    if (kind === "response") this.settle({ kind: "responded", status: this.status });
  }

  relayBroken(kind: RelayKind, tooLarge: boolean): void {
    if (kind === "response") {
      // The upstream's response stopped short: the client must see it cut off too.
      this.sink.abort();
      this.settle({ kind: "broken-after-head", status: this.status });
      return;
    }
    this.resetUpstream();
    // The client reset, closed or garbled its body (node's parser answers a garbled one),
    // or sent more than the limit.
    this.settle(
      tooLarge
        ? {
            kind: "client-gone",
            error: new ProxyError("too_large", `request body larger than limits.maxRequestBodyBytes (${this.limits.maxRequestBodyBytes} bytes)`),
          }
        : { kind: "client-gone" },
    );
  }

  /** The upstream's response head has been passed on; the body follows through the relay. */
  responding(status: number): void {
    clearTimeout(this.timer);
    this.status = status;
  }

  settle(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(outcome);
  }
}
