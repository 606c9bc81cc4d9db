// Asking the identity service for this proxy's certificate: a private key made
// in memory when the proxy starts (never written anywhere, never sent), a CSR
// signed with it, and the projected ServiceAccount token that proves which pod
// is asking. The service is authenticated by the mesh's trust bundle.
import { X509Certificate, type KeyObject, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { errorMessage } from "../telemetry/log";
import { ECDSA_P256, x509 } from "../util/x509";
import { MIN_TLS_VERSION } from "./material";

/** A small fixed set: they label the renewal-failure counter. */
export type IssueFailure = "token_unreadable" | "unreachable" | "refused" | "service_error" | "bad_response";

export class IssueError extends Error {
  override name = "IssueError";
  constructor(
    readonly reason: IssueFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface IssuedCertificate {
  /** The leaf followed by the issuer chain, as a TLS server presents it. */
  readonly chainPem: string;
  readonly leaf: X509Certificate;
}

export interface IdentityClientOptions {
  readonly url: string;
  readonly tokenFile: string;
  readonly caBundle: string;
  readonly lifetimeMs: number;
  readonly timeoutMs: number;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

export class IdentityClient {
  /** The private key's PEM, for the TLS context only. */
  readonly keyPem: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;

  constructor(private readonly opts: IdentityClientOptions) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.keyPem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
  }

  /** One request for a certificate; an IssueError naming what failed otherwise. */
  async issue(): Promise<IssuedCertificate> {
    let token: string;
    let ca: string;
    try {
      [token, ca] = await Promise.all([readFile(this.opts.tokenFile, "utf8"), readFile(this.opts.caBundle, "utf8")]);
    } catch (err) {
      throw new IssueError("token_unreadable", `cannot read the token or the trust bundle: ${errorMessage(err)}`);
    }
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      // The service names the certificate; the CSR's subject is not read.
      name: "CN=zt-mesh-proxy",
      keys: {
        privateKey: this.privateKey.toCryptoKey(ECDSA_P256, false, ["sign"]),
        publicKey: this.publicKey.toCryptoKey(ECDSA_P256, true, ["verify"]),
      },
      signingAlgorithm: ECDSA_P256,
    });
    const body = JSON.stringify({ csr: csr.toString("pem"), lifetimeMs: this.opts.lifetimeMs });
    const { status, text } = await this.post(body, token.trim(), ca);
    if (status !== 200) {
      const reason = status >= 500 ? "service_error" : "refused";
      throw new IssueError(reason, `identity service answered ${status}: ${text.slice(0, 300).trim()}`);
    }
    return this.parseAnswer(text);
  }

  private parseAnswer(text: string): IssuedCertificate {
    let answer: { certificate?: unknown; chain?: unknown };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw new IssueError("bad_response", "identity service answer is not JSON");
    }
    if (typeof answer.certificate !== "string" || typeof answer.chain !== "string") {
      throw new IssueError("bad_response", "identity service answer lacks certificate or chain");
    }
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(answer.certificate);
    } catch {
      throw new IssueError("bad_response", "identity service certificate does not parse");
    }
    if (!leaf.checkPrivateKey(createPrivateKey(this.keyPem))) {
      throw new IssueError("bad_response", "identity service certificate is not for this proxy's key");
    }
    return { chainPem: `${answer.certificate.trim()}\n${answer.chain.trim()}\n`, leaf };
  }

  private post(body: string, token: string, ca: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.opts.url.replace(/\/$/, "") + "/v1/certificates",
        {
          method: "POST",
          ca,
          minVersion: MIN_TLS_VERSION,
          timeout: this.opts.timeoutMs,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              reject(new IssueError("bad_response", `identity service answer over ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", (err) => reject(new IssueError("unreachable", `identity service answer cut off: ${errorMessage(err)}`)));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms`)));
      req.on("error", (err) => reject(new IssueError("unreachable", `identity service unreachable: ${errorMessage(err)}`)));
      req.end(body);
    });
  }
}
