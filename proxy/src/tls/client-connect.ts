// How this proxy dials a peer's 4141: TLS 1.3 with its mesh certificate,
// HTTP/2 by ALPN, and the peer held to the mesh identity (and, with issued
// certificates, to the node of the endpoint) rather than to the pod IP it was
// dialled by.
import { type TLSSocket, connect } from "node:tls";
import { MIN_TLS_VERSION, type TlsMaterial } from "./material";
import { type PeerRule, serverIdentityCheck } from "./peer-identity";

/** A connection to the proxy of `node` at host:port. */
export function connectToPeer(host: string, port: number, material: TlsMaterial, rule: PeerRule, node: string): TLSSocket {
  return connect({
    host,
    port,
    secureContext: material.clientContext,
    // SNI carries a host name; an issued identity is a URI, so none is sent.
    ...(rule.kind === "shared-name" ? { servername: rule.identity } : {}),
    checkServerIdentity: serverIdentityCheck(rule, node),
    ALPNProtocols: ["h2"],
    minVersion: MIN_TLS_VERSION,
  }).setNoDelay(true);
}
