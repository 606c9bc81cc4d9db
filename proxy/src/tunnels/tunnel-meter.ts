// What a tunnel is counted as, by direction and the service it was bound to:
// open now, bytes each way, and how long it lasted and how it ended.
import type { Logger } from "../telemetry/log";
import type { Direction, MeshMetrics } from "../telemetry/metrics";
import type { TunnelTotals } from "./byte-relay";

export class TunnelMeter {
  constructor(
    private readonly metrics: MeshMetrics,
    private readonly log: Logger,
    private readonly direction: Direction,
    private readonly service: string,
  ) {}

  /** Counts a tunnel as open; the returned function closes its account. */
  start(): (totals: TunnelTotals) => void {
    const { metrics, direction, service } = this;
    const started = performance.now();
    const open = metrics.tunnelsOpen.labels(direction, service);
    open.inc();
    return (totals) => {
      open.dec();
      metrics.tunnelBytes.labels(direction, service, "from_client").inc(totals.fromClient);
      metrics.tunnelBytes.labels(direction, service, "to_client").inc(totals.toClient);
      const seconds = (performance.now() - started) / 1000;
      metrics.tunnelDuration.labels(direction, service, totals.ending).observe(seconds);
      if (this.log.enabled("debug")) this.log.debug("tunnel_closed", { direction, service, seconds, ...totals });
    };
  }
}
