// Keeping this proxy's issued certificate current: the first one before the
// proxy serves, then a renewal at about two thirds of each one's life, and
// retries with exponential back-off while the service cannot be reached. The
// certificate held keeps serving until it expires; a renewed one is swapped in
// through the TLS store, so connections in flight finish on the old one.
import { readFile } from "node:fs/promises";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { IssueError, type IdentityClient, type IssuedCertificate } from "./identity-client";
import { type OwnIdentity, type TlsMaterial, buildMaterial } from "./material";
import type { TlsSource, TlsStore } from "./store";

const MAX_RETRY_MS = 60_000;
/** With no valid certificate the proxy serves nothing: it keeps asking at least this often. */
const MAX_RETRY_WITHOUT_CERTIFICATE_MS = 5000;
const RENEW_AT = 2 / 3;

export interface RenewalOptions {
  readonly caBundle: string;
  readonly own: OwnIdentity;
  readonly retryMs: number;
}

export class CertificateRenewal {
  private held: IssuedCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private store: TlsStore | undefined;
  private stopped = false;
  /** Why the last request failed, for readiness while none is held. */
  lastFailure: string | undefined;

  constructor(
    private readonly client: IdentityClient,
    private readonly opts: RenewalOptions,
    private readonly metrics: MeshMetrics,
    private readonly log: Logger,
  ) {}

  /** The TLS store's source: the trust bundle file, with the certificate held and the in-memory key. */
  get source(): TlsSource {
    return { paths: [this.opts.caBundle], load: () => this.material() };
  }

  private async material(): Promise<TlsMaterial> {
    if (this.held === undefined) throw new Error("no certificate issued yet");
    return buildMaterial(await readFile(this.opts.caBundle, "utf8"), this.held.chainPem, this.client.keyPem, this.opts.own);
  }

  /** Resolves once a certificate that fits is held, asking again with back-off until then. */
  async first(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        this.held = await this.client.issue();
        await this.material();
        this.log.info("certificate_issued", { notAfter: this.held.leaf.validTo, serial: this.held.leaf.serialNumber });
        return;
      } catch (err) {
        this.held = undefined;
        this.failed(err);
        await new Promise((r) => setTimeout(r, this.backoff(attempt)));
      }
    }
  }

  /** Renews from now on, swapping each new certificate into `store`. */
  start(store: TlsStore): void {
    this.store = store;
    this.schedule(this.renewDelay(), 0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private renewDelay(): number {
    const left = (this.held?.leaf.validToDate.getTime() ?? 0) - Date.now();
    return Math.max(0, left * RENEW_AT);
  }

  private schedule(ms: number, attempt: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.renew(attempt), ms);
    this.timer.unref();
  }

  private async renew(attempt: number): Promise<void> {
    const previous = this.held;
    try {
      this.held = await this.client.issue();
      if (!(await this.store!.reload())) throw new IssueError("bad_response", "issued certificate does not fit this proxy");
      this.lastFailure = undefined;
      this.log.info("certificate_renewed", { notAfter: this.held.leaf.validTo, serial: this.held.leaf.serialNumber });
      this.schedule(this.renewDelay(), 0);
    } catch (err) {
      this.held = previous;
      this.failed(err);
      this.schedule(this.backoff(attempt), attempt + 1);
    }
  }

  private failed(err: unknown): void {
    const reason = err instanceof IssueError ? err.reason : "bad_response";
    this.lastFailure = errorMessage(err);
    this.metrics.certificateRenewalFailures.labels(reason).inc();
    this.log.warn("certificate_request_failed", { reason, error: this.lastFailure, holding: this.held?.leaf.validTo ?? "nothing" });
  }

  /**
   * Exponential from retryMs, capped, with jitter so a fleet does not retry in
   * step; while a certificate is held, never beyond half its time left, so
   * the service coming back is noticed before it expires.
   */
  private backoff(attempt: number): number {
    let base = Math.min(this.opts.retryMs * 2 ** Math.min(attempt, 16), MAX_RETRY_MS);
    const left = (this.held?.leaf.validToDate.getTime() ?? 0) - Date.now();
    base = Math.min(base, left > 0 ? Math.max(this.opts.retryMs, left / 2) : MAX_RETRY_WITHOUT_CERTIFICATE_MS);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
}
