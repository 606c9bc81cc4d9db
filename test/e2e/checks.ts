// What the walkthrough must show, as named pass/fail checks: the demo prints
// them, the cluster test asserts them.
import type { WalkthroughResult } from "./walkthrough";

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export function walkthroughChecks(r: WalkthroughResult): Check[] {
  const c = r.capture;
  return [
    { name: "hello and world run on different nodes", ok: r.helloNode !== r.worldNode, detail: `hello on ${r.helloNode}, world on ${r.worldNode}` },
    { name: "http_proxy=<node>:4140 curl -s http://hello answers Hello world", ok: r.hello.trim() === "Hello world", detail: JSON.stringify(r.hello.trim()) },
    {
      name: "curl -p through a CONNECT tunnel to world answers world",
      ok: r.tunnelled.trim() === "world" && r.tunnelNode !== r.worldNode,
      detail: `${JSON.stringify(r.tunnelled.trim())} from node ${r.tunnelNode}, world on ${r.worldNode}`,
    },
    { name: "4141 with the mesh certificate and l5d-dtab answers pong", ok: r.pong.trim() === "pong", detail: JSON.stringify(r.pong.trim()) },
    { name: "4141 refuses a client without a certificate", ok: r.refusedWithoutCert, detail: r.refusedWithoutCert ? "refused" : "answered" },
    { name: "4141 refuses a certificate from another CA", ok: r.refusedOtherCa, detail: r.refusedOtherCa ? "refused" : "answered" },
    {
      name: "the links between nodes carried mesh traffic as TLS records only",
      ok: c.meshSegments > 0 && c.tlsRecords > 0 && c.nonTlsMeshSegments === 0 && c.plaintextHttp === 0,
      detail: `${c.meshSegments} segments on the mesh port, ${c.tlsRecords} TLS application-data records, ${c.nonTlsMeshSegments} non-TLS, ${c.plaintextHttp} plaintext HTTP packets`,
    },
    {
      name: "no application bytes in clear on the links",
      ok: c.clearTextHits.length === 0,
      detail: c.clearTextHits.length === 0 ? "none of Hello world, GET /, pong, l5d-dtab, HTTP/1.1 200" : `found ${c.clearTextHits.join(", ")}`,
    },
    {
      name: "the proxies' metrics show the requests",
      ok: r.outgoingHelloRequests >= 1 && r.incomingWorldRequests >= 1,
      detail: `outgoing hello: ${r.outgoingHelloRequests}, incoming world: ${r.incomingWorldRequests}`,
    },
  ];
}
