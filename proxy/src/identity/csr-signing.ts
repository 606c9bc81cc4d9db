// Turning a proxy's certificate signing request into its certificate. Only the
// CSR's public key is used, once its self-signature proves the requester holds
// the private key; the names, the usages and the dates are the service's.
import { randomBytes } from "node:crypto";
import type { webcrypto } from "node:crypto";
import { type CryptoKey, ECDSA_P256, x509 } from "../util/x509";
import type { Issuer } from "./issuer-store";
import { Refusal } from "./refusal";

/** Clock skew between nodes tolerated: a certificate is valid from this long before it is signed. */
const BACKDATE_MS = 30_000;

/** Parses a PEM PKCS#10 request and checks its signature; the verified public key, or a Refusal. */
export async function verifiedCsrKey(pem: string): Promise<x509.PublicKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw new Refusal("bad_csr", "csr is not a PEM PKCS#10 certificate signing request");
  }
  const alg = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
    throw new Refusal("unsupported_key", "csr key must be ECDSA P-256");
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new Refusal("bad_csr_signature", "csr signature does not verify with its own public key");
  return csr.publicKey;
}

export interface LeafRequest {
  readonly publicKey: x509.PublicKey | CryptoKey;
  /** Subject CN, for people reading the certificate; peers never look at it. */
  readonly commonName: string;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  /** A mesh proxy's certificate is for both ends of a connection; the service's own for serving only. */
  readonly usage: "client-and-server" | "server";
  readonly lifetimeMs: number;
}

export interface SignedLeaf {
  readonly pem: string;
  readonly notAfter: Date;
}

/** Signs a leaf with the issuer; it never outlives the issuer. */
export async function signLeaf(issuer: Issuer, req: LeafRequest, now = Date.now()): Promise<SignedLeaf> {
  const notAfter = new Date(Math.min(now + req.lifetimeMs, issuer.notAfter.getTime()));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // a positive INTEGER, as RFC 5280 asks
  const names: x509.JsonGeneralName[] = [
    ...(req.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(req.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
  ];
  const usages =
    req.usage === "server" ? [x509.ExtendedKeyUsage.serverAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString("hex"),
    subject: [{ CN: [req.commonName] }],
    issuer: issuer.cert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    publicKey: req.publicKey,
    signingKey: issuer.signingKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
    ],
  });
  return { pem: cert.toString("pem"), notAfter };
}
