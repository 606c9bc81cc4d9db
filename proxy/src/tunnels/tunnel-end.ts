// One end of a tunnel: a byte stream the proxy relays, and how to tell a
// clean end from a broken one. A TCP FIN and an HTTP/2 END_STREAM are clean
// ends, passed on as the same; a reset, an error or a close without one is a
// break, passed on as a reset, so neither side ever takes a cut-off stream
// for a finished one.
import type { Socket } from "node:net";
import { type Http2Stream, constants as h2 } from "node:http2";
import type { Duplex } from "node:stream";
import { resetStream } from "../http/relay";

export interface TunnelEnd {
  readonly stream: Duplex;
  /** Whether the stream's 'end' was a clean end of the sender's bytes. */
  endedCleanly(): boolean;
  /** Breaks this end off so the far side sees a reset, not an end. */
  reset(): void;
}

/** A TCP connection: an app's, or the client's after CONNECT. Needs allowHalfOpen, so one direction may end first. */
export function socketEnd(socket: Socket): TunnelEnd {
  return {
    stream: socket,
    endedCleanly: () => true,
    reset: () => {
      if (!socket.destroyed) socket.resetAndDestroy();
    },
  };
}

/** An HTTP/2 CONNECT stream on the hop between proxies. */
export function http2End(stream: Http2Stream): TunnelEnd {
  return {
    stream,
    // node:http2 emits 'end' on a stream reset with CANCEL too.
    endedCleanly: () => stream.rstCode === undefined || stream.rstCode === h2.NGHTTP2_NO_ERROR,
    reset: () => resetStream(stream, false),
  };
}
