// The HTTP/2 hop between proxies must carry every request head the HTTP/1.1
// listener accepts, or a request the client got right would fail on the hop
// and be blamed on the peer. HTTP/2 counts a header list differently from an
// HTTP/1.1 head: 32 bytes of overhead per field (RFC 9113 6.5.2, RFC 7541 4.1)
// instead of ": " and CRLF, plus the pseudo-headers and the fields each proxy
// adds (Via, l5d-dst-endpoint). Both ends of the hop size their settings here.
import type { ProxyConfig } from "@zt-mesh/proxy-config";

/** Pseudo-headers, and fields the proxies add, beyond the client's own. */
const HOP_FIELDS = 16;
/** Bytes the proxies add: a Via entry per hop (at most 64) and l5d-dst-endpoint. */
const HOP_BYTES = 1024;
const FIELD_OVERHEAD = 32;

export interface HopHeaderSettings {
  /** SETTINGS_MAX_HEADER_LIST_SIZE to advertise. */
  readonly maxHeaderListSize: number;
  /** node:http2's maxHeaderListPairs. */
  readonly maxHeaderListPairs: number;
}

export function hopHeaderSettings(limits: Pick<ProxyConfig["limits"], "maxHeaderBytes" | "maxHeaderCount">): HopHeaderSettings {
  const pairs = limits.maxHeaderCount + HOP_FIELDS;
  return { maxHeaderListPairs: pairs, maxHeaderListSize: limits.maxHeaderBytes + FIELD_OVERHEAD * pairs + HOP_BYTES };
}

/**
 * The HTTP/2 flow-control window, per stream and per connection, both ways on
 * the hop. Enough for a cluster network's bandwidth-delay product; and small
 * enough that what a peer may have in flight fits in the connection's socket
 * buffers. node:http2 stops reading a session's socket while its own writes are
 * backed up, so with windows larger than those buffers two proxies relaying
 * full-duplex streams (a tunnel echoing 64 MiB both ways) each wait for the
 * other to read, until the liveness ping gives up on the connection.
 */
export const HOP_WINDOW_BYTES = 1024 * 1024;
