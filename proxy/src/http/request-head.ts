// What a request head must satisfy beyond what node's HTTP/1.1 parser checks,
// so that what a listener accepts is what the next hop carries (RFC 9112, and
// what nginx refuses). Both listeners' HTTP/1.1 sides run these checks.
import type { IncomingMessage } from "node:http";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { ProxyError } from "./errors";

export type HeadLimits = Pick<ProxyConfig["limits"], "maxHeaderCount" | "maxRequestBodyBytes">;

// RFC 3986 authority without userinfo: an IP literal or a reg-name
// (unreserved, pct-encoded, sub-delims), then an optional port. HTTP/2 refuses
// anything else in :authority, '@' included.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?$/;

function malformed(what: string): ProxyError {
  return new ProxyError("bad_request", `malformed request: ${what}`);
}

/** A ProxyError when `authority` (a Host header or the authority of an absolute URI) is not host[:port]. */
export function checkAuthority(authority: string): ProxyError | undefined {
  if (authority === "" || AUTHORITY.test(authority)) return undefined;
  return malformed(
    authority.includes("@") ? "userinfo (user@) in the request's authority" : "invalid characters in the request's authority",
  );
}

/** A ProxyError when a CONNECT's target is not authority-form host:port (RFC 9110 9.3.6). */
export function checkConnectTarget(target: string): ProxyError | undefined {
  const colon = target.lastIndexOf(":");
  const port = colon === -1 ? "" : target.slice(colon + 1);
  if (colon <= 0 || !/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return malformed(`a CONNECT target is host:port, got ${JSON.stringify(target.slice(0, 64))}`);
  }
  return checkAuthority(target);
}

/** A ProxyError for an HTTP/1.x request head the mesh does not forward. */
export function checkHttp1Head(req: IncomingMessage, limits: HeadLimits): ProxyError | undefined {
  if (req.httpVersionMajor === 0) return malformed("HTTP/0.9 request line (no HTTP version)");
  if (req.httpVersionMajor !== 1) {
    return new ProxyError("version", `HTTP/${req.httpVersion} is not spoken in HTTP/1 framing: use HTTP/1.1`);
  }
  const raw = req.rawHeaders;
  if (raw.length > 2 * limits.maxHeaderCount) {
    return new ProxyError("headers_too_large", `request has more than ${limits.maxHeaderCount} header fields (limits.maxHeaderCount)`);
  }
  // node keeps the first of several Host headers; which one a server honours
  // is ambiguous, so RFC 9112 3.2 asks for a 400.
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === "host") hosts++;
  }
  if (hosts > 1) return malformed("more than one Host header");
  // RFC 9112 6.1: HTTP/1.0 has no chunked framing, so a Transfer-Encoding there is faulty.
  if (req.httpVersionMinor === 0 && req.headers["transfer-encoding"] !== undefined) {
    return malformed("Transfer-Encoding in an HTTP/1.0 request");
  }
  return checkDeclaredLength(req.headers["content-length"], limits.maxRequestBodyBytes);
}

/** 413 for a declared Content-Length over limits.maxRequestBodyBytes (0: no limit). */
export function checkDeclaredLength(contentLength: string | undefined, max: number): ProxyError | undefined {
  if (max === 0 || contentLength === undefined || !(Number(contentLength) > max)) return undefined;
  return new ProxyError("too_large", `request body of ${contentLength} bytes is larger than limits.maxRequestBodyBytes (${max})`);
}
