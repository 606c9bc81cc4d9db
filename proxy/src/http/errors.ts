// Errors the proxy itself answers with: the status says which kind, the l5d-err
// header and the one-line body say what failed. Never a stack trace.

export type ProxyErrorKind =
  | "bad_request"
  | "forbidden"
  | "method"
  | "client_timeout"
  | "too_large"
  | "headers_too_large"
  | "version"
  | "no_route"
  | "unavailable"
  | "shed"
  | "timeout"
  | "loop";

const STATUS: Record<ProxyErrorKind, number> = {
  bad_request: 400,
  forbidden: 403,
  method: 405,
  client_timeout: 408,
  too_large: 413,
  headers_too_large: 431,
  version: 505,
  no_route: 502,
  unavailable: 502,
  loop: 502,
  shed: 503,
  timeout: 504,
};

export class ProxyError extends Error {
  readonly status: number;
  constructor(
    readonly kind: ProxyErrorKind,
    message: string,
    /**
     * Nothing of the request reached an app (no endpoint here, or it refused
     * the connection): a sending proxy may try another endpoint, whatever the method.
     */
    readonly unprocessed = false,
  ) {
    super(message);
    this.name = "ProxyError";
    this.status = STATUS[kind];
  }
}
