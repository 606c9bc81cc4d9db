// Deciding whether the other end of a TLS connection is a mesh member, and
// naming the reason when it is not: one check for both sides (4141 accepting,
// the peer pool dialling) and for connections already open. The reasons label
// metrics, so they are a small fixed set.
import { X509Certificate } from "node:crypto";
import type { PeerCertificate, TLSSocket } from "node:tls";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { nodeOfIdentityUri } from "./identity-uri";

export type HandshakeFailure =
  | "no_client_certificate"
  | "expired_certificate"
  | "not_yet_valid_certificate"
  | "untrusted_certificate"
  | "wrong_identity"
  | "wrong_node"
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
  if (c === WRONG_NODE_CODE) return "wrong_node";
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
 * What makes a certificate a mesh member's. With certificate files every
 * proxy shares one DNS identity; with issued certificates each proxy has its
 * node's SPIFFE URI, and any node of the mesh's namespace in the trust domain
 * is a member.
 */
export type PeerRule =
  | { readonly kind: "shared-name"; readonly identity: string }
  | { readonly kind: "node-identity"; readonly trustDomain: string; readonly namespace: string };

export function peerRule(config: ProxyConfig): PeerRule {
  return config.tls.source === "files"
    ? { kind: "shared-name", identity: config.tls.identity }
    : { kind: "node-identity", trustDomain: config.identity.trustDomain, namespace: config.kubernetes.meshNamespace };
}

/**
 * The node an issued certificate speaks for: its one URI subjectAltName, a
 * mesh proxy's identity under `rule`. Two URIs, or any other, name no node.
 */
function certificateNode(cert: X509Certificate, rule: PeerRule & { kind: "node-identity" }): string | undefined {
  const uris = (cert.subjectAltName ?? "").split(", ").filter((e) => e.startsWith("URI:"));
  if (uris.length !== 1) return undefined;
  return nodeOfIdentityUri(uris[0]!.slice(4), rule.trustDomain, rule.namespace);
}

/** Whether `cert` (chain already verified) is a mesh member's under `rule`. */
function admitsPeer(cert: X509Certificate, rule: PeerRule): boolean {
  return rule.kind === "shared-name" ? carriesIdentity(cert, rule.identity) : certificateNode(cert, rule) !== undefined;
}

/**
 * For the dialling side: whether the proxy reached is the one meant, the proxy
 * of `node`. With a shared identity no certificate names a node, so membership
 * is all that can be checked.
 */
function dialledPeerProblem(cert: X509Certificate, rule: PeerRule, node: string): HandshakeFailure | undefined {
  if (!admitsPeer(cert, rule)) return "wrong_identity";
  if (rule.kind === "node-identity" && certificateNode(cert, rule) !== node) return "wrong_node";
  return undefined;
}

/** Whether this proxy's own certificate is fit to present: a member's, and for issued ones its own node's. */
export function ownCertificateProblem(cert: X509Certificate, rule: PeerRule, node: string): string | undefined {
  if (rule.kind === "shared-name") {
    return carriesIdentity(cert, rule.identity) ? undefined : `certificate does not carry the mesh identity ${rule.identity}`;
  }
  return dialledPeerProblem(cert, rule, node) === undefined ? undefined : `certificate does not carry this node's identity (node ${node})`;
}

/**
 * Checks a server-side socket after the handshake: a chain to a trusted CA
 * (verified by node, reported in `authorized`) and the mesh identity.
 * Returns undefined for a mesh member.
 */
export function checkPeer(socket: TLSSocket, rule: PeerRule): HandshakeFailure | undefined {
  const peer = socket.getPeerX509Certificate();
  if (peer === undefined) return "no_client_certificate";
  if (!socket.authorized) return classifyVerifyError(authorizationCode(socket));
  return admitsPeer(peer, rule) ? undefined : "wrong_identity";
}

/** The verification code node recorded on a socket it refused, if any. */
export function authorizationCode(socket: TLSSocket): string | undefined {
  const err = socket.authorizationError;
  return typeof err === "string" ? err : (err as NodeJS.ErrnoException | null | undefined)?.code;
}

const WRONG_NODE_CODE = "ERR_ZT_MESH_WRONG_NODE";

/**
 * tls.connect's checkServerIdentity for the dialling side, for a connection
 * meant for the proxy of `node`: the peer must be a mesh member by the rule 4141
 * applies, and, with issued certificates, that node's proxy.
 */
export function serverIdentityCheck(rule: PeerRule, node: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const problem = dialledPeerProblem(new X509Certificate(cert.raw), rule, node);
    if (problem === undefined) return undefined;
    const err: NodeJS.ErrnoException =
      problem === "wrong_node"
        ? new Error(`peer certificate does not name node ${node}, the node of the endpoint dialled`)
        : new Error(
            rule.kind === "shared-name"
              ? `peer certificate does not carry the mesh identity ${rule.identity} as a DNS subjectAltName`
              : `peer certificate does not carry a mesh proxy identity of spiffe://${rule.trustDomain}/ns/${rule.namespace}`,
          );
    err.code = problem === "wrong_node" ? WRONG_NODE_CODE : "ERR_TLS_CERT_ALTNAME_INVALID";
    return err;
  };
}

/** A peer's certificate and the intermediates it presented with it. */
export interface PeerChain {
  readonly leaf: X509Certificate;
  readonly intermediates: readonly X509Certificate[];
}

/**
 * The chain a TLS peer presented, leaf first (node links it through
 * issuerCertificate). A server sees the client's leaf only: node exposes no
 * more of a client's chain.
 */
export function peerChainOf(socket: TLSSocket): PeerChain | undefined {
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined) return undefined;
  const intermediates: X509Certificate[] = [];
  let link = socket.getPeerCertificate(true);
  for (let depth = 0; depth < MAX_CHAIN_DEPTH && link.issuerCertificate !== undefined && link.issuerCertificate !== link; depth++) {
    link = link.issuerCertificate;
    intermediates.push(new X509Certificate(link.raw));
  }
  return { leaf, intermediates };
}

const MAX_CHAIN_DEPTH = 4;

/**
 * Whether `leaf` chains to a CA of the bundle, directly (one CA signs the mesh
 * certificates) or through intermediates in date (an issuer under the anchor).
 */
export function chainsToBundle(chain: PeerChain, cas: readonly X509Certificate[], now: number): boolean {
  let cert = chain.leaf;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    const current = cert;
    if (cas.some((ca) => current.checkIssued(ca) && current.verify(ca.publicKey))) return true;
    const next = chain.intermediates.find(
      (i) => i.ca && current.checkIssued(i) && current.verify(i.publicKey) && now <= i.validToDate.getTime() && now >= i.validFromDate.getTime(),
    );
    if (next === undefined) return false;
    cert = next;
  }
  return false;
}

/** What a proxy trusts: the bundle's CAs, and the intermediates of its own chain (the issuer its peers share). */
export interface Trust {
  readonly cas: readonly X509Certificate[];
  readonly intermediates: readonly X509Certificate[];
}

/**
 * Whether a peer admitted earlier is still one: its certificate in date,
 * chained to a CA still in the bundle, carrying the identity. Undefined if it
 * is. A chain node could not show (a client's, on 4141) is completed with this
 * proxy's own intermediates.
 */
export function peerStanding(chain: PeerChain, trust: Trust, rule: PeerRule, now: number): HandshakeFailure | undefined {
  const cert = chain.leaf;
  if (now > cert.validToDate.getTime()) return "expired_certificate";
  if (now < cert.validFromDate.getTime()) return "not_yet_valid_certificate";
  const intermediates = [...chain.intermediates, ...trust.intermediates];
  if (!chainsToBundle({ leaf: cert, intermediates }, trust.cas, now)) return "untrusted_certificate";
  return admitsPeer(cert, rule) ? undefined : "wrong_identity";
}
