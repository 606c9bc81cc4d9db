// Errors the proxy itself answers with: the status says which kind, the l5d-err
// header and the one-line body say what failed. Never a stack trace.

export type ProxyErrorKind = "bad_request" | "method" | "no_route" | "unavailable" | "shed" | "timeout" | "loop";

const STATUS: Record<ProxyErrorKind, number> = {
  bad_request: 400,
  method: 405,
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
