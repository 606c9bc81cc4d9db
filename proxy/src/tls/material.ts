// The mesh's TLS material: this proxy's certificate and key, and the bundle of
// CAs it trusts. Loaded from files and checked before use, so a half-written or
// mismatched Secret is rejected with a reason instead of breaking handshakes.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type SecureContext, type SecureContextOptions, createSecureContext } from "node:tls";
import { carriesIdentity } from "./peer-identity";

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
}

/** TLS 1.3 only: the mesh has no old peers to stay compatible with. */
export const MIN_TLS_VERSION = "TLSv1.3" as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function splitPemCertificates(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => new X509Certificate(block));
}

function buildMaterial(caPem: string, certPem: string, keyPem: string, identity: string): TlsMaterial {
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
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (issuer === undefined) throw new TlsMaterialError("certificate is not signed by any CA in the bundle");
  if (!carriesIdentity(cert, identity)) {
    throw new TlsMaterialError(`certificate does not carry the mesh identity ${identity}`);
  }
  const options: SecureContextOptions = {
    ca: caPem,
    cert: certPem,
    key: keyPem,
    minVersion: MIN_TLS_VERSION,
  };
  return { options, clientContext: createSecureContext(options), cert, cas };
}

export async function loadMaterial(files: TlsFiles, identity: string): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([
    readFile(files.caBundle, "utf8"),
    readFile(files.cert, "utf8"),
    readFile(files.key, "utf8"),
  ]);
  return buildMaterial(ca, cert, key, identity);
}
