// Header handling shared by both directions. Hop-by-hop headers describe one
// connection and must not be forwarded (RFC 9110 7.6.1); HTTP/2 forbids them
// outright, so they are removed before every hop.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  "http2-settings",
  "host",
]);

/** Connection header values that name only hop-by-hop headers (no Set needed). */
const PLAIN_CONNECTION = new Set(["keep-alive", "Keep-Alive"]);

/** Internal context headers that only proxies may set. */
export const DST_ENDPOINT_HEADER = "l5d-dst-endpoint";
export const ERR_HEADER = "l5d-err";

/**
 * Copies end-to-end headers: drops hop-by-hop ones, anything the Connection
 * header names, HTTP/2 pseudo-headers, and `drop` (internal headers).
 */
export function endToEndHeaders(headers: IncomingHttpHeaders, drop?: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const connection = headers.connection;
  const named =
    connection === undefined || PLAIN_CONNECTION.has(connection)
      ? undefined
      : new Set(connection.toLowerCase().split(/\s*,\s*/));
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || name.charCodeAt(0) === 58 /* ':' */ || name === drop) continue;
    if (named !== undefined && named.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Keeps l5d-err values to one printable line of bounded length. */
export function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, " ").slice(0, 512);
}
