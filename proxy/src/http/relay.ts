// Carries a message body from one hop to the next, and decides in this one
// place whether it finished. A body that stopped early (its sender reset or
// closed, its framing broke, it passed the size limit) is never ended on the
// next hop: the caller resets that hop instead, so the far side sees an aborted
// message and never a shorter complete one.
//
// Hot path: one RelayState per relayed body, found on the source and the sink
// by module-level listeners, so no closures are built per request.
import type { IncomingMessage } from "node:http";
import { type Http2Stream, constants as h2 } from "node:http2";
import { type Writable, addAbortSignal } from "node:stream";

/** A message body as the listeners and forwarders receive it. */
export type BodySource = IncomingMessage | Http2Stream;

export type RelayKind = "request" | "response";

/** Told how a relayed body ended. */
export interface RelayWatcher {
  /** The body arrived whole and the sink has been ended. */
  relayEnded(kind: RelayKind): void;
  /** The body stopped short, or passed its limit: the sink was not ended and must be reset. */
  relayBroken(kind: RelayKind, tooLarge: boolean): void;
}

// Two keys: one HTTP/2 stream is the source of one relay and the sink of another.
const AS_SOURCE = Symbol("zt-mesh.relay-source");
const AS_SINK = Symbol("zt-mesh.relay-sink");

class RelayState {
  bytes = 0;
  done = false;
  constructor(
    readonly source: BodySource,
    readonly sink: Writable,
    readonly watcher: RelayWatcher,
    readonly kind: RelayKind,
    readonly limit: number,
  ) {}
}

type Source = BodySource & { [AS_SOURCE]?: RelayState };
type Sink = Writable & { [AS_SINK]?: RelayState };

/**
 * Whether a source that emitted 'end' carried its whole message: an HTTP/1.1
 * message with its last chunk or its full Content-Length, an HTTP/2 stream
 * ended by END_STREAM. node:http2 also emits 'end' on a stream reset with
 * CANCEL, so the reset code tells the two apart.
 */
function endedWhole(source: BodySource): boolean {
  return "complete" in source ? source.complete : source.rstCode === h2.NGHTTP2_NO_ERROR;
}

/**
 * Pipes `source` into `sink` and ends the sink only if the source ended whole;
 * otherwise, or past `limit` bytes (0: none), tells `watcher`. A source may be
 * relayed again (a retry); the later relay replaces the earlier one.
 */
export function relay(source: BodySource, sink: Writable, watcher: RelayWatcher, kind: RelayKind, limit = 0): void {
  const s = source as Source;
  const first = s[AS_SOURCE] === undefined;
  const state = new RelayState(source, sink, watcher, kind, limit);
  s[AS_SOURCE] = state;
  (sink as Sink)[AS_SINK] = state;
  if (first) {
    source.on("end", onSourceEnd);
    source.on("close", onSourceClose);
    // Failures surface as 'close' without a whole 'end'; an 'error' with no
    // listener would be thrown.
    source.on("error", ignore);
    if (limit > 0) source.on("data", onSourceData);
  }
  sink.once("close", onSinkClose);
  if (source.readableEnded) return finish(state);
  if (source.destroyed) return broken(state, false);
  source.pipe(sink, { end: false });
}

/**
 * Whether a request body is still expected from its sender while nothing
 * downstream holds it back: a timeout now is the sender's doing, not the peer's.
 */
export function awaitingSender(source: BodySource): boolean {
  const state = (source as Source)[AS_SOURCE];
  return state !== undefined && !state.done && !state.sink.writableNeedDrain && source.readableLength === 0;
}

const ABORTED = AbortSignal.abort();
const CUT_SHORT = new Error("message cut short");

/**
 * Resets an HTTP/2 stream without ending it first. `close(code)` would send
 * END_STREAM before RST_STREAM, and the peer would take what it had as the
 * whole message. `cancel`: CANCEL (the sender went away), else INTERNAL_ERROR
 * (what we were relaying broke).
 */
export function resetStream(stream: Http2Stream, cancel: boolean): void {
  if (stream.destroyed) return;
  // node:http2 maps an AbortError to CANCEL and any other error to INTERNAL_ERROR.
  if (cancel) addAbortSignal(ABORTED, stream);
  else stream.destroy(CUT_SHORT);
}

function finish(state: RelayState): void {
  if (state.done) return;
  state.done = true;
  if (endedWhole(state.source)) {
    state.sink.end();
    state.watcher.relayEnded(state.kind);
  } else {
    state.watcher.relayBroken(state.kind, false);
  }
}

function broken(state: RelayState, tooLarge: boolean): void {
  if (state.done) return;
  state.done = true;
  state.source.unpipe(state.sink);
  state.watcher.relayBroken(state.kind, tooLarge);
}

function onSourceEnd(this: Source): void {
  finish(this[AS_SOURCE]!);
}

function onSourceClose(this: Source): void {
  broken(this[AS_SOURCE]!, false);
}

function onSourceData(this: Source, chunk: Buffer): void {
  const state = this[AS_SOURCE]!;
  state.bytes += chunk.length;
  if (state.bytes > state.limit) broken(state, true);
}

/**
 * The next hop stopped taking the body (it answered, failed or was reset):
 * the rest is read and dropped, so an HTTP/1.1 connection stays in step and an
 * HTTP/2 stream's flow-control window keeps opening.
 */
function onSinkClose(this: Sink): void {
  const state = this[AS_SINK];
  if (state === undefined || state.done || (state.source as Source)[AS_SOURCE] !== state) return;
  state.source.unpipe(this);
  state.source.resume();
}

function ignore(): void {}
