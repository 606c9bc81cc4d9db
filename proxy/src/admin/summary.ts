// GET /admin/summary.json: what the admin page shows, read from the proxy's
// own state when asked and kept nowhere between requests. Request figures come
// from the counters /metrics renders, so the page and a scrape agree; rates
// are left to the page, which has successive samples and their times.
import { showDtab } from "@zt-mesh/proxy-config";
import type { X509Certificate } from "node:crypto";
import type { LiveConfig } from "../config/live";
import type { EndpointIndex } from "../discovery/endpoint-index";
import type { PeerConnection } from "../http/peer-pool";
import type { TlsStore } from "../tls/store";
import type { Direction, MeshMetrics } from "../telemetry/metrics";
import { histogramQuantile } from "./quantile";

export interface ServiceSummary {
  readonly direction: Direction;
  readonly service: string;
  /** mesh_requests_total, summed over status classes. */
  readonly requests: number;
  /** Of those, 2xx to 4xx: the classic success rate's numerator. */
  readonly succeeded: number;
  readonly byClass: Readonly<Record<string, number>>;
  /** Seconds, by histogram_quantile over mesh_request_duration_seconds; null before any request. */
  readonly latency: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
}

export interface PeerSummary extends PeerConnection {
  /** The node whose mesh proxy has this address, if discovery still lists it. */
  readonly node: string | null;
}

export interface CertificateSummary {
  readonly subject: string;
  readonly serial: string;
  readonly notAfter: string;
}

export interface AdminSummaryJson {
  readonly node: string;
  /** When the figures were read (ms since the epoch): the page's clock for rates. */
  readonly time: number;
  readonly services: readonly ServiceSummary[];
  readonly peers: readonly PeerSummary[];
  /** certificate null: the proxy is still waiting for its first one. */
  readonly tls: { readonly identity: string; readonly certificate: CertificateSummary | null; readonly cas: readonly CertificateSummary[] };
  readonly dtab: { readonly outgoing: string; readonly incoming: string };
}

export interface SummarySources {
  readonly nodeName: string;
  readonly live: LiveConfig;
  readonly metrics: MeshMetrics;
  /** The identity this proxy presents: the mesh name, or its node's URI. */
  readonly identity: string;
  /** Undefined until the proxy holds a certificate. */
  readonly tls: TlsStore | undefined;
  readonly index: EndpointIndex;
  readonly peers: () => readonly PeerConnection[];
}

export function adminSummary(src: SummarySources): AdminSummaryJson {
  const time = Date.now();
  const services = src.metrics
    .requestSeries()
    .map((s): ServiceSummary => {
      const c = s.byClass;
      const succeeded = (c["2xx"] ?? 0) + (c["3xx"] ?? 0) + (c["4xx"] ?? 0);
      const q = (p: number): number | null => histogramQuantile(p, s.buckets) ?? null;
      return {
        direction: s.direction,
        service: s.service,
        requests: s.count,
        succeeded,
        byClass: c,
        latency: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
      };
    })
    .sort((a, b) => compare(a.direction, b.direction) || compare(a.service, b.service));

  const nodeByAddress = new Map<string, string>();
  for (const [node, ip] of src.index.peerNodes()) nodeByAddress.set(ip, node);
  const peers = src.peers()
    .map((p): PeerSummary => ({ ...p, node: nodeByAddress.get(p.address) ?? null }))
    .sort((a, b) => compare(a.node ?? "", b.node ?? "") || compare(a.address, b.address));

  const material = src.tls?.current;
  const { outgoingDtab, incomingDtab } = src.live.current;
  return {
    node: src.nodeName,
    time,
    services,
    peers,
    tls: {
      identity: src.identity,
      certificate: material === undefined ? null : certificate(material.cert),
      cas: material === undefined ? [] : material.cas.map(certificate),
    },
    dtab: { outgoing: showDtab(outgoingDtab), incoming: showDtab(incomingDtab) },
  };
}

function certificate(c: X509Certificate): CertificateSummary {
  return { subject: c.subject.replaceAll("\n", ", "), serial: c.serialNumber, notAfter: c.validToDate.toISOString() };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
