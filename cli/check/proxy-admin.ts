// What a running proxy says about itself on its admin port: the summary the
// admin page reads (its certificate and the CAs it trusts).
import { request } from "node:http";

export interface ProxyView {
  readonly certificate: { readonly serial: string; readonly notAfter: string } | null;
  readonly cas: readonly { readonly serial: string }[];
}

export function proxyView(host: string, port: number, timeoutMs = 3000): Promise<ProxyView> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/admin/summary.json", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`admin answered ${res.statusCode}`));
        try {
          const s = JSON.parse(body) as { tls: ProxyView };
          resolve({ certificate: s.tls.certificate, cas: s.tls.cas });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}
