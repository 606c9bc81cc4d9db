// Holds the current TLS material and swaps it when its source changes: the
// mounted files, or (with issued certificates) the trust bundle file and each
// renewal. Listeners re-read `current` for each new connection; subscribers to
// reload() (the incoming listener, the peer pool) move new connections onto
// the new material while existing ones finish.
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { type FileWatch, watchFiles } from "../util/file-watch";
import { type OwnIdentity, type TlsFiles, type TlsMaterial, loadMaterial } from "./material";

/** Where the material comes from: files to watch, and how to build it from what they hold now. */
export interface TlsSource {
  readonly paths: readonly string[];
  load(): Promise<TlsMaterial>;
}

/** Certificate, key and bundle all from files (tests, benchmarks, your own PKI). */
export function fileSource(files: TlsFiles, own: OwnIdentity): TlsSource {
  return { paths: [files.caBundle, files.cert, files.key], load: () => loadMaterial(files, own) };
}

export class TlsStore {
  private watch: FileWatch | undefined;
  private readonly subscribers = new Set<(m: TlsMaterial) => void>();

  private constructor(
    private material: TlsMaterial,
    private readonly source: TlsSource,
    private readonly log: Logger,
    private readonly metrics: MeshMetrics,
  ) {
    this.recordExpiry();
  }

  static async open(source: TlsSource, log: Logger, metrics: MeshMetrics): Promise<TlsStore> {
    return new TlsStore(await source.load(), source, log, metrics);
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /** Starts watching the files; `intervalMs` bounds how late a missed change is noticed. */
  watchFiles(intervalMs: number): void {
    this.watch ??= watchFiles(this.source.paths, intervalMs, () => {
      void this.reload();
    });
  }

  onReload(fn: (m: TlsMaterial) => void): void {
    this.subscribers.add(fn);
  }

  /** Whether this proxy's certificate is out of date now; a reason if it is. */
  certificateProblem(now = Date.now()): string | undefined {
    const { cert } = this.material;
    if (now > cert.validToDate.getTime()) return `certificate expired at ${cert.validToDate.toISOString()}`;
    if (now < cert.validFromDate.getTime()) return `certificate not valid until ${cert.validFromDate.toISOString()}`;
    return undefined;
  }

  /** Re-reads the source; keeps the current material if the new one is unusable. */
  async reload(): Promise<boolean> {
    let next: TlsMaterial;
    try {
      next = await this.source.load();
    } catch (err) {
      // Secrets are updated file by file; a mismatch is often a moment's state,
      // and the next change notification or poll picks up the consistent set.
      this.metrics.reloads.labels("tls", "rejected").inc();
      this.log.warn("tls_reload_rejected", { error: errorMessage(err) });
      return false;
    }
    if (next.cert.fingerprint256 === this.material.cert.fingerprint256 && sameCas(next, this.material)) return true;
    this.material = next;
    this.recordExpiry();
    this.metrics.reloads.labels("tls", "applied").inc();
    this.log.info("tls_reloaded", {
      certificateSerial: next.cert.serialNumber,
      notAfter: next.cert.validTo,
      trustedCas: next.cas.length,
    });
    for (const fn of this.subscribers) fn(next);
    return true;
  }

  close(): void {
    this.watch?.close();
    this.watch = undefined;
  }

  private recordExpiry(): void {
    const g = this.metrics.certificateExpiry;
    g.reset();
    g.labels("mesh").set(Math.floor(this.material.cert.validToDate.getTime() / 1000));
    for (const ca of this.material.cas) {
      g.labels(`ca:${ca.serialNumber}`).set(Math.floor(ca.validToDate.getTime() / 1000));
    }
  }
}

function sameCas(a: TlsMaterial, b: TlsMaterial): boolean {
  if (a.cas.length !== b.cas.length) return false;
  return a.cas.every((ca, i) => ca.fingerprint256 === b.cas[i]!.fingerprint256);
}
