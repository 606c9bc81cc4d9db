// Clients that talk to a proxy's incoming port the way an operator or a peer
// does: HTTP/1.1 or HTTP/2 over TLS, with a chosen certificate and TLS version.
import { connect as h2connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import type { OutgoingHttpHeaders } from "node:http";
import type { SecureVersion } from "node:tls";
import { IDENTITY } from "./mesh";
import type { Reply } from "./net";
import { httpGet } from "./net";

export interface TlsClientOptions {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  readonly maxVersion?: SecureVersion;
  readonly headers?: OutgoingHttpHeaders;
}

export function httpsGet(host: string, port: number, path: string, opts: TlsClientOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host,
        port,
        path,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: IDENTITY,
        maxVersion: opts.maxVersion,
        headers: { host: "l5d", ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

export function h2Get(host: string, port: number, path: string, opts: TlsClientOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://${host}:${port}`, { ca: opts.ca, cert: opts.cert, key: opts.key, servername: IDENTITY });
    session.on("error", reject);
    const stream = session.request({ ":path": path, ":authority": "l5d", ...opts.headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers = {};
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ status, headers, body: Buffer.concat(chunks).toString() });
    });
    stream.on("error", (e) => {
      session.destroy();
      reject(e);
    });
  });
}

/** Fetches the admin metrics of a proxy and reads one sample. */
export async function metric(host: string, adminPort: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await httpGet(host, adminPort, "/metrics")).body;
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const set = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}
