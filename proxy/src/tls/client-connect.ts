// How this proxy dials a peer's 4141: TLS 1.3 with its mesh certificate,
// HTTP/2 by ALPN, and the peer held to the mesh identity rather than to the
// pod IP it was dialled by.
import { type TLSSocket, connect } from "node:tls";
import { MIN_TLS_VERSION, type TlsMaterial } from "./material";
import { checkServerMeshIdentity } from "./peer-identity";

export function connectToPeer(host: string, port: number, material: TlsMaterial, identity: string): TLSSocket {
  return connect({
    host,
    port,
    secureContext: material.clientContext,
    servername: identity,
    checkServerIdentity: checkServerMeshIdentity,
    ALPNProtocols: ["h2"],
    minVersion: MIN_TLS_VERSION,
  }).setNoDelay(true);
}
