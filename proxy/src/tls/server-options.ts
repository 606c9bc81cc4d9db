// What the incoming listener (4141) asks of a TLS client: TLS 1.3, a client
// certificate, and HTTP/2 (or HTTP/1.1 for checking a node with curl).
import type { TlsOptions } from "node:tls";
import { MIN_TLS_VERSION, type TlsMaterial } from "./material";

/** Server options for the material in force; rebuilt on every TLS reload. */
export function peerServerOptions(m: TlsMaterial): TlsOptions {
  return {
    ...m.options,
    minVersion: MIN_TLS_VERSION,
    // A missing certificate fails the handshake with a certificate_required
    // alert. node checks the chain only after the handshake, in JavaScript,
    // and has no way to send an alert then: a bad chain is refused by closing
    // the connection, its reason kept on the socket.
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2", "http/1.1"],
  };
}
