// The identity service's own HTTPS certificate, which it signs with the issuer
// for its Service's DNS names, so proxies authenticate it with the trust bundle
// they already hold and no second Secret is needed. Its key lives in memory.
import { generateKeyPairSync } from "node:crypto";
import type { SecureContextOptions } from "node:tls";
import { signLeaf } from "./csr-signing";
import type { Issuer } from "./issuer-store";

/** Re-signed well before this, at two thirds of it (and whenever the issuer changes). */
const SERVING_LIFETIME_MS = 24 * 3600_000;

export interface ServingCertificate {
  readonly options: SecureContextOptions;
  readonly notAfter: Date;
}

export async function signServingCertificate(issuer: Issuer, dnsNames: readonly string[], now = Date.now()): Promise<ServingCertificate> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = await signLeaf(
    issuer,
    {
      publicKey: publicKey.toCryptoKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]),
      commonName: dnsNames[0]!,
      dnsNames,
      usage: "server",
      lifetimeMs: SERVING_LIFETIME_MS,
    },
    now,
  );
  return {
    options: { cert: `${leaf.pem.trim()}\n${issuer.chainPem}`, key: privateKey.export({ format: "pem", type: "pkcs8" }) },
    notAfter: leaf.notAfter,
  };
}
