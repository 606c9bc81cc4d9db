// Holds the current TLS material and swaps it when the mounted files change.
// Listeners re-read `current` for each new connection; subscribers to reload()
// (the incoming listener, the peer pool) move new connections onto the new
// material while existing ones finish.
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { type FileWatch, watchFiles } from "../util/file-watch";
import { type TlsFiles, type TlsMaterial, loadMaterial } from "./material";

export class TlsStore {
  private watch: FileWatch | undefined;
  private readonly subscribers = new Set<(m: TlsMaterial) => void>();

  private constructor(
    private material: TlsMaterial,
    private readonly files: TlsFiles,
    private readonly identity: string,
    private readonly log: Logger,
    private readonly metrics: MeshMetrics,
  ) {
    this.recordExpiry();
  }

  static async open(
    files: TlsFiles,
    identity: string,
    log: Logger,
    metrics: MeshMetrics,
  ): Promise<TlsStore> {
    return new TlsStore(await loadMaterial(files, identity), files, identity, log, metrics);
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /** Starts watching the files; `intervalMs` bounds how late a missed change is noticed. */
  watchFiles(intervalMs: number): void {
    this.watch ??= watchFiles([this.files.caBundle, this.files.cert, this.files.key], intervalMs, () => {
      void this.reload();
    });
  }

  onReload(fn: (m: TlsMaterial) => void): void {
    this.subscribers.add(fn);
  }

  /** Re-reads the files; keeps the current material if the new one is unusable. */
  async reload(): Promise<boolean> {
    let next: TlsMaterial;
    try {
      next = await loadMaterial(this.files, this.identity);
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
