// Small network helpers for tests: free ports, and HTTP requests that report
// status, headers and body without throwing on error statuses.
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { createServer } from "node:net";

/** A port number free on every one of `ips` (proxies on different "nodes" share port numbers). */
export async function freePort(ips: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      first.once("error", reject);
      first.listen(0, ips[0], () => resolve((first.address() as { port: number }).port));
    });
    const others = [];
    let ok = true;
    for (const ip of ips.slice(1)) {
      const s = createServer();
      others.push(s);
      ok = await new Promise<boolean>((resolve) => {
        s.once("error", () => resolve(false));
        s.listen(port, ip, () => resolve(true));
      });
      if (!ok) break;
    }
    await Promise.all([first, ...others].map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
    if (ok) return port;
  }
  throw new Error("no common free port");
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  readonly localAddress?: string;
  readonly timeoutMs?: number;
}

/** Sends `path` (absolute URI for proxy form) to host:port and collects the reply. */
export function httpGet(host: string, port: number, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, path, method: opts.method ?? "GET", headers: opts.headers, localAddress: opts.localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error("test request timed out")));
    req.on("error", reject);
    req.end(opts.body);
  });
}
