// The issuer: the intermediate CA whose key signs every proxy's certificate.
// Read from its mounted Secret, checked (a CA, in date, the key its own, ECDSA
// P-256), and swapped live when the files change; a set that does not fit
// together is refused and the one in use kept.
import { X509Certificate as NodeCertificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import { pemCertificateBlocks } from "../tls/material";
import { type FileWatch, watchFiles } from "../util/file-watch";
import { type CryptoKey, x509 } from "../util/x509";
import type { IdentityMetrics } from "./metrics";

export interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly notAfter: Date;
  /** The issuer certificate and whatever followed it in the file: the chain handed out with each leaf. */
  readonly chainPem: string;
  readonly signingKey: CryptoKey;
}

export interface IssuerFiles {
  readonly cert: string;
  readonly key: string;
}

class IssuerError extends Error {
  override name = "IssuerError";
}

async function loadIssuer(files: IssuerFiles, now: number): Promise<Issuer> {
  const [certPem, keyPem] = await Promise.all([readFile(files.cert, "utf8"), readFile(files.key, "utf8")]);
  const blocks = pemCertificateBlocks(certPem);
  if (blocks.length === 0) throw new IssuerError("issuer certificate file holds no certificate");
  const nodeCert = new NodeCertificate(blocks[0]!);
  if (!nodeCert.ca) throw new IssuerError("issuer certificate is not a CA (basicConstraints CA:TRUE)");
  if (now > nodeCert.validToDate.getTime()) throw new IssuerError(`issuer certificate expired at ${nodeCert.validTo}`);
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new IssuerError("issuer key file holds no readable private key");
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new IssuerError("issuer key is not ECDSA P-256");
  }
  if (!nodeCert.checkPrivateKey(key)) throw new IssuerError("issuer key does not match the issuer certificate");
  const signingKey = key.toCryptoKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return {
    cert: new x509.X509Certificate(blocks[0]!),
    notAfter: nodeCert.validToDate,
    chainPem: blocks.join("\n") + "\n",
    signingKey,
  };
}

export class IssuerStore {
  private watch: FileWatch | undefined;
  private readonly subscribers = new Set<(issuer: Issuer) => void>();

  private constructor(
    private issuer: Issuer,
    private readonly files: IssuerFiles,
    private readonly log: Logger,
    private readonly metrics: IdentityMetrics,
  ) {
    metrics.issuerExpiry.set(Math.floor(issuer.notAfter.getTime() / 1000));
  }

  static async open(files: IssuerFiles, log: Logger, metrics: IdentityMetrics): Promise<IssuerStore> {
    return new IssuerStore(await loadIssuer(files, Date.now()), files, log, metrics);
  }

  get current(): Issuer {
    return this.issuer;
  }

  /** Whether the issuer can sign now; a reason if not. */
  problem(now = Date.now()): string | undefined {
    return now > this.issuer.notAfter.getTime() ? `issuer certificate expired at ${this.issuer.notAfter.toISOString()}` : undefined;
  }

  onChange(fn: (issuer: Issuer) => void): void {
    this.subscribers.add(fn);
  }

  watchFiles(intervalMs: number): void {
    this.watch ??= watchFiles([this.files.cert, this.files.key], intervalMs, () => void this.reload());
  }

  async reload(): Promise<boolean> {
    let next: Issuer;
    try {
      next = await loadIssuer(this.files, Date.now());
    } catch (err) {
      // Secrets change file by file: the next notification brings the consistent pair.
      this.metrics.issuerReloads.labels("rejected").inc();
      this.log.warn("issuer_reload_rejected", { error: errorMessage(err) });
      return false;
    }
    if (next.chainPem === this.issuer.chainPem) return true;
    this.issuer = next;
    this.metrics.issuerExpiry.set(Math.floor(next.notAfter.getTime() / 1000));
    this.metrics.issuerReloads.labels("applied").inc();
    this.log.info("issuer_reloaded", { serial: next.cert.serialNumber, notAfter: next.notAfter.toISOString() });
    for (const fn of this.subscribers) fn(next);
    return true;
  }

  close(): void {
    this.watch?.close();
    this.watch = undefined;
  }
}
