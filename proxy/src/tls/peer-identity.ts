// Deciding whether the other end of a TLS connection is a mesh member, and
// naming the reason when it is not: one check for both sides (4141 accepting,
// the peer pool dialling) and for connections already open. The reasons label
// metrics, so they are a small fixed set.
import { X509Certificate } from "node:crypto";
import type { PeerCertificate, TLSSocket } from "node:tls";

export type HandshakeFailure =
  | "no_client_certificate"
  | "expired_certificate"
  | "not_yet_valid_certificate"
  | "untrusted_certificate"
  | "wrong_identity"
  | "protocol_version"
  | "not_tls"
  | "handshake_timeout"
  | "connection_reset"
  | "other";

const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
]);

/** Maps a certificate verification code (socket.authorizationError, err.code) to a reason. */
export function classifyVerifyError(code: string | undefined): HandshakeFailure {
  if (code === undefined) return "other";
  return verifyFailure(code) ?? classifyTlsError(code, "");
}

/** The reason for an OpenSSL verification code; undefined if `code` is not one. */
function verifyFailure(code: string): HandshakeFailure | undefined {
  if (code === "CERT_HAS_EXPIRED") return "expired_certificate";
  if (code === "CERT_NOT_YET_VALID") return "not_yet_valid_certificate";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return "wrong_identity";
  if (UNTRUSTED.has(code)) return "untrusted_certificate";
  return undefined;
}

/** Maps an error from a failed handshake (tlsClientError, client 'error') to a reason. */
export function classifyTlsError(code: string | undefined, message: string): HandshakeFailure {
  const c = code ?? "";
  if (c === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return "no_client_certificate";
  if (
    c === "ERR_SSL_UNSUPPORTED_PROTOCOL" ||
    c === "ERR_SSL_NO_PROTOCOLS_AVAILABLE" ||
    c === "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" ||
    /protocol version|unsupported protocol/i.test(message)
  ) {
    return "protocol_version";
  }
  if (c === "ERR_SSL_HTTP_REQUEST" || c === "ERR_SSL_WRONG_VERSION_NUMBER" || c === "ERR_SSL_PACKET_LENGTH_TOO_LONG") {
    return "not_tls";
  }
  if (c === "ERR_TLS_HANDSHAKE_TIMEOUT") return "handshake_timeout";
  if (c === "ERR_TLS_CERT_ALTNAME_INVALID") return "wrong_identity";
  if (c === "ECONNRESET" || c === "EPIPE") return "connection_reset";
  if (c === "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED") return "expired_certificate";
  if (c === "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" || c === "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE") {
    return "untrusted_certificate";
  }
  if (c === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") return "no_client_certificate";
  // Not classifyVerifyError: for a code neither knows (ECONNREFUSED) the two
  // would call each other until the stack overflowed.
  if (c !== "" && !c.startsWith("ERR_")) return verifyFailure(c) ?? "other";
  return "other";
}

/**
 * Whether `cert` carries `identity` as one of its DNS subjectAltName entries,
 * exactly: a wildcard entry does not match, and the subject CN is never looked at
 * (node's checkServerIdentity would allow both).
 */
export function carriesIdentity(cert: X509Certificate, identity: string): boolean {
  return cert.checkHost(identity, { subject: "never", wildcards: false, partialWildcards: false }) === identity;
}

/**
 * Checks a server-side socket after the handshake: a chain to a trusted CA
 * (verified by node, reported in `authorized`) and the mesh identity.
 * Returns undefined for a mesh member.
 */
export function checkPeer(socket: TLSSocket, identity: string): HandshakeFailure | undefined {
  const peer = socket.getPeerX509Certificate();
  if (peer === undefined) return "no_client_certificate";
  if (!socket.authorized) return classifyVerifyError(authorizationCode(socket));
  return carriesIdentity(peer, identity) ? undefined : "wrong_identity";
}

/** The verification code node recorded on a socket it refused, if any. */
export function authorizationCode(socket: TLSSocket): string | undefined {
  const err = socket.authorizationError;
  return typeof err === "string" ? err : (err as NodeJS.ErrnoException | null | undefined)?.code;
}

/**
 * tls.connect's checkServerIdentity for the dialling side: the peer must carry
 * the mesh identity it was dialled for, by the same rule 4141 applies.
 */
export function checkServerMeshIdentity(identity: string, cert: PeerCertificate): Error | undefined {
  if (carriesIdentity(new X509Certificate(cert.raw), identity)) return undefined;
  const err: NodeJS.ErrnoException = new Error(`peer certificate does not carry the mesh identity ${identity} as a DNS subjectAltName`);
  err.code = "ERR_TLS_CERT_ALTNAME_INVALID";
  return err;
}

/**
 * Whether a peer admitted earlier is still one: its certificate in date, issued
 * by a CA still in the bundle, carrying the identity. Undefined if it is.
 */
export function peerStanding(
  cert: X509Certificate,
  cas: readonly X509Certificate[],
  identity: string,
  now: number,
): HandshakeFailure | undefined {
  if (now > cert.validToDate.getTime()) return "expired_certificate";
  if (now < cert.validFromDate.getTime()) return "not_yet_valid_certificate";
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) return "untrusted_certificate";
  return carriesIdentity(cert, identity) ? undefined : "wrong_identity";
}
