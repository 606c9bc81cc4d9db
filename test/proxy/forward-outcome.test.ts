// What follows each way a forwarding attempt can end: whether the endpoint is
// blamed, whether the request may go again (and where), and what the client is
// told. The five outcomes are the request path's contract (docs/architecture.md).
import assert from "node:assert/strict";
import { IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Socket } from "node:net";
import { PassThrough, type Writable } from "node:stream";
import { describe, it } from "node:test";
import { ProxyError } from "../../proxy/src/http/errors";
import type { AbortWatcher, ReceivedRequest, ResponseSink } from "../../proxy/src/http/exchange";
import { type ForwardOutcome, answerClient, endpointFailed } from "../../proxy/src/http/forward-outcome";
import { retryDecision } from "../../proxy/src/routing/retry-policy";

const refused = new ProxyError("unavailable", "peer 10.0.0.5:4141 refused the request");
const lost = new ProxyError("unavailable", "peer 10.0.0.5:4141 failed: socket hang up");
const timeout = new ProxyError("timeout", "timeout after 200 ms waiting for peer 10.0.0.5:4141");
const stalled = new ProxyError("client_timeout", "request body not received within 200 ms (limits.requestTimeoutMs)");

const OUTCOMES: Record<string, ForwardOutcome> = {
  responded: { kind: "responded", status: 200 },
  refused: { kind: "not-sent", error: refused, endpointAtFault: true },
  closing: { kind: "not-sent", error: refused, endpointAtFault: false },
  lost: { kind: "lost-before-head", error: lost },
  timedOut: { kind: "lost-before-head", error: timeout },
  broken: { kind: "broken-after-head", status: 200 },
  clientLeft: { kind: "client-gone" },
  clientStalled: { kind: "client-gone", error: stalled },
};

function request(method: string, body: "none" | "unread" | "read"): ReceivedRequest {
  const stream = new IncomingMessage(new Socket());
  if (body === "read") {
    stream.push("x");
    stream.read();
  }
  return { method, authority: "world", path: "/", headers: {}, body: stream, hasBody: body !== "none", remoteAddress: "127.0.0.1" };
}

describe("whether an attempt counts against the endpoint", () => {
  const blamed = Object.entries(OUTCOMES)
    .filter(([, o]) => endpointFailed(o))
    .map(([name]) => name);
  it("blames the endpoint for refusing, losing, timing out or breaking a response; not for a closing connection or the client", () => {
    assert.deepEqual(blamed, ["refused", "lost", "timedOut", "broken"]);
  });
});

describe("whether a request may go again", () => {
  it("anything not sent may go to another endpoint, whatever the method", () => {
    assert.equal(retryDecision(OUTCOMES.refused!, request("POST", "unread"), false), "another-endpoint");
  });
  it("a closing connection is redialled once to the same endpoint, then another is chosen", () => {
    assert.equal(retryDecision(OUTCOMES.closing!, request("POST", "none"), false), "same-endpoint");
    assert.equal(retryDecision(OUTCOMES.closing!, request("POST", "none"), true), "another-endpoint");
  });
  it("lost before the head: only an idempotent method goes again", () => {
    assert.equal(retryDecision(OUTCOMES.lost!, request("GET", "none"), false), "another-endpoint");
    assert.equal(retryDecision(OUTCOMES.lost!, request("PUT", "unread"), false), "another-endpoint");
    assert.equal(retryDecision(OUTCOMES.lost!, request("POST", "unread"), false), "no");
  });
  it("never once the request has timed out", () => {
    assert.equal(retryDecision(OUTCOMES.timedOut!, request("GET", "none"), false), "no");
  });
  it("never once any of the body was read: it is streamed, not kept", () => {
    assert.equal(retryDecision(OUTCOMES.refused!, request("PUT", "read"), false), "no");
  });
  it("never after a response, a broken response or a departed client", () => {
    for (const name of ["responded", "broken", "clientLeft", "clientStalled"]) {
      assert.equal(retryDecision(OUTCOMES[name]!, request("GET", "none"), false), "no", name);
    }
  });
});

/** A sink that records what the client would be told. */
class RecordingSink implements ResponseSink {
  failed: ProxyError | undefined;
  headersSent = false;
  respond(_status: number, _headers: OutgoingHttpHeaders): Writable | undefined {
    this.headersSent = true;
    return new PassThrough();
  }
  fail(err: ProxyError): void {
    this.failed = err;
  }
  abort(): void {}
  watch(_watcher: AbortWatcher): void {}
}

describe("what the client is told", () => {
  it("an answered or cut response stands as the upstream sent it", () => {
    for (const name of ["responded", "broken"]) {
      const sink = new RecordingSink();
      assert.equal(answerClient(sink, OUTCOMES[name]!), 200, name);
      assert.equal(sink.failed, undefined, name);
    }
  });
  it("a failure before any response is the proxy's own answer, with its status", () => {
    const sink = new RecordingSink();
    assert.equal(answerClient(sink, OUTCOMES.timedOut!), 504);
    assert.equal(sink.failed, timeout);
  });
  it("a client that stalled its body is told 408; one that left is told nothing", () => {
    const stalledSink = new RecordingSink();
    assert.equal(answerClient(stalledSink, OUTCOMES.clientStalled!), 408);
    assert.equal(stalledSink.failed, stalled);
    const leftSink = new RecordingSink();
    assert.equal(answerClient(leftSink, OUTCOMES.clientLeft!), 0);
    assert.equal(leftSink.failed, undefined);
  });
  it("once a response has begun, a failure cuts it and counts no new status", () => {
    const sink = new RecordingSink();
    sink.headersSent = true;
    assert.equal(answerClient(sink, OUTCOMES.lost!), 0);
    assert.equal(sink.failed, lost, "fail() cuts a begun response");
  });
});
