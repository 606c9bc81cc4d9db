// The mesh's TLS material: this proxy's certificate and key, and the bundle of
// CAs it trusts. Loaded from files and checked before use, so a half-written or
// mismatched Secret is rejected with a reason instead of breaking handshakes.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type SecureContext, type SecureContextOptions, createSecureContext } from "node:tls";
import { type PeerRule, chainsToBundle, ownCertificateProblem } from "./peer-identity";

export interface TlsFiles {
  readonly caBundle: string;
  readonly cert: string;
  readonly key: string;
}

class TlsMaterialError extends Error {
  override name = "TlsMaterialError";
}

export interface TlsMaterial {
  readonly options: SecureContextOptions;
  /** Shared by every connection this proxy opens to peers. */
  readonly clientContext: SecureContext;
  readonly cert: X509Certificate;
  readonly cas: readonly X509Certificate[];
  /** The certificates after this proxy's own in its chain file (an issuer under the anchor). */
  readonly intermediates: readonly X509Certificate[];
}

/** TLS 1.3 only: the mesh has no old peers to stay compatible with. */
export const MIN_TLS_VERSION = "TLSv1.3" as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks of a file, in order. */
export function pemCertificateBlocks(pem: string): string[] {
  return pem.match(PEM_CERT) ?? [];
}

function splitPemCertificates(pem: string): X509Certificate[] {
  return pemCertificateBlocks(pem).map((block) => new X509Certificate(block));
}

/** This proxy's certificate must fit `rule` for its own node. */
export interface OwnIdentity {
  readonly rule: PeerRule;
  readonly node: string;
}

export function buildMaterial(caPem: string, certPem: string, keyPem: string, own: OwnIdentity): TlsMaterial {
  const cas = splitPemCertificates(caPem);
  if (cas.length === 0) throw new TlsMaterialError("CA bundle holds no certificate");
  const chain = splitPemCertificates(certPem);
  const cert = chain[0];
  if (cert === undefined) throw new TlsMaterialError("certificate file holds no certificate");
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new TlsMaterialError("key file holds no readable private key");
  }
  if (!cert.checkPrivateKey(key)) throw new TlsMaterialError("key does not match certificate");
  if (!chainsToBundle({ leaf: cert, intermediates: chain.slice(1) }, cas, Date.now())) {
    throw new TlsMaterialError("certificate is not signed by any CA in the bundle");
  }
  const problem = ownCertificateProblem(cert, own.rule, own.node);
  if (problem !== undefined) throw new TlsMaterialError(problem);
  const options: SecureContextOptions = {
    ca: caPem,
    cert: certPem,
    key: keyPem,
    minVersion: MIN_TLS_VERSION,
  };
  return { options, clientContext: createSecureContext(options), cert, cas, intermediates: chain.slice(1) };
}

export async function loadMaterial(files: TlsFiles, own: OwnIdentity): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([
    readFile(files.caBundle, "utf8"),
    readFile(files.cert, "utf8"),
    readFile(files.key, "utf8"),
  ]);
  return buildMaterial(ca, cert, key, own);
}
