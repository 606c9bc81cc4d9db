// The admin page's latency percentiles, estimated from the histogram buckets
// exactly as Prometheus' histogram_quantile() estimates them from the same
// buckets scraped from /metrics, so the page and a dashboard agree.

export interface CumulativeBucket {
  /** Upper bound; the last bucket's is Infinity. */
  readonly le: number;
  /** Observations at or below `le`. */
  readonly count: number;
}

/**
 * The q-quantile (0 <= q <= 1) of cumulative buckets sorted by `le`, or
 * undefined when nothing was observed. Within the bucket holding the rank the
 * value is interpolated linearly, the lowest bucket starting at 0; a rank in
 * the +Inf bucket is answered with the highest finite bound.
 */
export function histogramQuantile(q: number, buckets: readonly CumulativeBucket[]): number | undefined {
  const total = buckets.at(-1)?.count ?? 0;
  if (buckets.length < 2 || total === 0) return undefined;
  const rank = q * total;
  // As Prometheus: the first bucket, +Inf excluded, whose count reaches the rank.
  let b = buckets.findIndex((x, i) => i < buckets.length - 1 && x.count >= rank);
  if (b === -1) b = buckets.length - 1;
  if (b === buckets.length - 1) return buckets[b - 1]!.le;
  const upper = buckets[b]!.le;
  if (b === 0 && upper <= 0) return upper;
  const start = b === 0 ? 0 : buckets[b - 1]!.le;
  const below = b === 0 ? 0 : buckets[b - 1]!.count;
  const inBucket = buckets[b]!.count - below;
  return start + (upper - start) * ((rank - below) / inBucket);
}
