// A one-page SVG of a benchmark run: grouped bars per response size for each
// figure, the three paths side by side, with the value on every bar. Plain SVG
// text, no dependencies; any browser or image viewer opens it.
import { type BenchReport, PATHS, PATH_LABEL, type PathName, type PathResult, SIZES, SIZE_LABEL, find, fmt } from "./results";

const COLORS: Record<string, string> = {
  direct: "#8c8c8c",
  mesh: "#1f6fd1",
  reference: "#e07b1a",
  "mesh-out": "#1f6fd1",
  "mesh-in": "#7fb0ea",
  "ref-out": "#e07b1a",
  "ref-in": "#f2b77a",
};

interface Series {
  readonly key: string;
  readonly label: string;
  readonly value: (size: (typeof SIZES)[number]) => number | undefined;
  /** A suffix for the value label, e.g. "!" when a path did not keep up with the rate. */
  readonly mark?: (size: (typeof SIZES)[number]) => string;
}

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly digits: number;
  readonly series: readonly Series[];
  /** A horizontal line, e.g. a target. */
  readonly line?: { value: number; label: string };
  /** Logarithmic value axis (latencies that span 0.1 ms to seconds). */
  readonly log?: boolean;
}

const PANEL_W = 420;
const PANEL_H = 250;
const MARGIN = { top: 34, right: 12, bottom: 40, left: 56 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

function panel(p: Panel, x0: number, y0: number): string {
  const out: string[] = [];
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const values = SIZES.flatMap((s) => p.series.map((se) => se.value(s) ?? 0)).filter((v) => Number.isFinite(v));
  const max = niceMax(Math.max(...values, p.line?.value ?? 0) * 1.08);
  let y: (v: number) => number;
  const ticks: number[] = [];
  if (p.log === true) {
    const positive = values.filter((v) => v > 0);
    const lo = 10 ** Math.floor(Math.log10(Math.min(...positive, 1)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive, lo * 10) * 1.5));
    y = (v: number): number => y0 + MARGIN.top + h - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * h;
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    y = (v: number): number => y0 + MARGIN.top + h - (v / max) * h;
    for (let i = 0; i <= 4; i++) ticks.push((max * i) / 4);
  }
  out.push(`<text x="${x0 + MARGIN.left}" y="${y0 + 20}" class="title">${esc(p.title)}</text>`);
  for (const v of ticks) {
    const yy = y(v);
    const label = p.log === true ? (v < 1 ? String(v) : fmt(v, 0)) : fmt(v, v < 10 && max <= 10 ? 1 : 0);
    out.push(`<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + w}" y1="${yy}" y2="${yy}" class="grid"/>`);
    out.push(`<text x="${x0 + MARGIN.left - 6}" y="${yy + 4}" class="axis" text-anchor="end">${label}</text>`);
  }
  out.push(
    `<text transform="translate(${x0 + 14},${y0 + MARGIN.top + h / 2}) rotate(-90)" class="axis" text-anchor="middle">${esc(p.unit)}</text>`,
  );
  const groupW = w / SIZES.length;
  const barW = Math.min(34, (groupW - 18) / p.series.length);
  SIZES.forEach((size, gi) => {
    const gx = x0 + MARGIN.left + gi * groupW + (groupW - barW * p.series.length) / 2;
    p.series.forEach((se, si) => {
      const v = se.value(size);
      const bx = gx + si * barW;
      if (v === undefined || !Number.isFinite(v)) {
        out.push(`<text x="${bx + barW / 2}" y="${y(0) - 3}" class="val" text-anchor="middle">n/a</text>`);
        return;
      }
      out.push(
        `<rect x="${bx + 1}" y="${y(v)}" width="${barW - 2}" height="${Math.max(0, y(0) - y(v))}" fill="${COLORS[se.key] ?? "#555"}"><title>${esc(`${se.label}, ${SIZE_LABEL[size]}: ${fmt(v, p.digits)} ${p.unit}`)}</title></rect>`,
      );
      const digits = p.log === true && v >= 100 ? 0 : p.digits;
      out.push(`<text x="${bx + barW / 2}" y="${y(v) - 3}" class="val" text-anchor="middle">${fmt(v, digits)}${se.mark?.(size) ?? ""}</text>`);
    });
    out.push(
      `<text x="${x0 + MARGIN.left + gi * groupW + groupW / 2}" y="${y0 + MARGIN.top + h + 16}" class="axis" text-anchor="middle">${SIZE_LABEL[size]}</text>`,
    );
  });
  if (p.line !== undefined) {
    const ly = y(p.line.value);
    out.push(`<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + w}" y1="${ly}" y2="${ly}" class="target"/>`);
    out.push(`<text x="${x0 + MARGIN.left + w}" y="${ly - 4}" class="targettext" text-anchor="end">${esc(p.line.label)}</text>`);
  }
  // legend under the axis
  let lx = x0 + MARGIN.left;
  for (const se of p.series) {
    out.push(`<rect x="${lx}" y="${y0 + PANEL_H - 14}" width="10" height="10" fill="${COLORS[se.key] ?? "#555"}"/>`);
    out.push(`<text x="${lx + 14}" y="${y0 + PANEL_H - 5}" class="legend">${esc(se.label)}</text>`);
    lx += 16 + se.label.length * 6.2;
  }
  return out.join("\n");
}

function pathSeries(
  results: readonly PathResult[],
  value: (r: PathResult) => number | undefined,
  mark?: (r: PathResult) => string,
): Series[] {
  return PATHS.filter((p) => results.some((r) => r.path === p)).map((path: PathName) => ({
    key: path,
    label: PATH_LABEL[path],
    value: (size) => {
      const r = find(results, path, size);
      return r === undefined ? undefined : value(r);
    },
    mark: (size) => {
      const r = find(results, path, size);
      return r === undefined || mark === undefined ? "" : mark(r);
    },
  }));
}

/** "!" when the path reached less than 95% of the requested rate: its latency is queueing. */
function behind(rate: string): (r: PathResult) => string {
  return (r) => {
    const f = r.fixed[rate];
    return f !== undefined && f.achievedRps < 0.95 * f.targetRps ? "!" : "";
  };
}

function procSeries(results: readonly PathResult[], value: (r: PathResult, proc: string) => number | undefined): Series[] {
  const out: Series[] = [];
  for (const [path, procs] of [["mesh", ["mesh-out", "mesh-in"]], ["reference", ["ref-out", "ref-in"]]] as const) {
    if (!results.some((r) => r.path === path)) continue;
    for (const proc of procs) {
      out.push({
        key: proc,
        label: `${path === "mesh" ? "zt-mesh" : "nginx"} ${proc.endsWith("out") ? "out" : "in"}`,
        value: (size) => {
          const r = find(results, path, size);
          return r === undefined ? undefined : value(r, proc);
        },
      });
    }
  }
  return out;
}

export function renderChart(report: BenchReport): string {
  const rs = report.results;
  const panels: Panel[] = [
    { title: "Maximum throughput, keep-alive (higher is better)", unit: "req/s", digits: 0, series: pathSeries(rs, (r) => r.max.rps) },
    {
      title: "p99 latency at 500 req/s (log scale)",
      unit: "ms",
      digits: 2,
      log: true,
      series: pathSeries(rs, (r) => r.fixed["500"]?.latencyMs.p99, behind("500")),
    },
    {
      title: "p99 latency at 2000 req/s (log scale)",
      unit: "ms",
      digits: 2,
      log: true,
      series: pathSeries(rs, (r) => r.fixed["2000"]?.latencyMs.p99, behind("2000")),
    },
    {
      title: "p99.9 latency at 2000 req/s (log scale)",
      unit: "ms",
      digits: 2,
      log: true,
      series: pathSeries(rs, (r) => r.fixed["2000"]?.latencyMs.p999, behind("2000")),
    },
    {
      title: "CPU seconds per 10,000 requests, per proxy",
      unit: "CPU s",
      digits: 2,
      series: procSeries(rs, (r, p) => r.processes[p]?.cpuPer10kAtMax),
    },
    {
      title: "Peak RSS per proxy under load",
      unit: "MiB",
      digits: 0,
      series: procSeries(rs, (r, p) => r.processes[p]?.peakRssMiB),
      line: { value: 80, label: "target 80 MiB" },
    },
  ];
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const headH = 64;
  const targetsH = 22 + 16 * report.targets.length;
  const W = cols * PANEL_W + 20;
  const H = headH + rows * PANEL_H + targetsH + 10;
  const m = report.machine;
  const body = panels.map((p, i) => panel(p, 10 + (i % cols) * PANEL_W, headH + Math.floor(i / cols) * PANEL_H));
  const ty = headH + rows * PANEL_H + 16;
  const targets = report.targets.map(
    (t, i) =>
      `<text x="20" y="${ty + 18 + i * 16}" class="${t.pass ? "pass" : "fail"}">${t.pass ? "PASS" : "FAIL"}</text>` +
      `<text x="62" y="${ty + 18 + i * 16}" class="legend">${esc(`${t.target}${t.size === "all" ? "" : ` (${SIZE_LABEL[t.size]})`}: ${fmt(t.value, 2)}, limit ${fmt(t.limit, 2)}; ${t.detail}`)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<style>
.head{font-size:17px;font-weight:bold}
.sub{font-size:11px;fill:#444}
.title{font-size:13px;font-weight:bold}
.axis{font-size:10px;fill:#333}
.val{font-size:9px;fill:#222}
.legend{font-size:10.5px;fill:#222}
.grid{stroke:#e3e3e3;stroke-width:1}
.target{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:5,4}
.targettext{font-size:10px;fill:#c0392b}
.pass{font-size:10.5px;font-weight:bold;fill:#1e8449}
.fail{font-size:10.5px;font-weight:bold;fill:#c0392b}
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="26" class="head">zt-mesh: (a) direct, (b) zt-mesh two-hop mTLS, (c) nginx two-hop mTLS${report.quick ? " — QUICK SMOKE, not figures" : ""}</text>
<text x="20" y="44" class="sub">${esc(`${report.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB · Node ${m.node} · load average at start ${m.loadAverageStart.map((x) => x.toFixed(2)).join(" ")}`)}</text>
<text x="20" y="58" class="sub">${esc("latency corrected for coordinated omission (oha --latency-correction); throughput by wrk; loopback only; ! = did not reach 95% of the rate")}</text>
${body.join("\n")}
<text x="20" y="${ty}" class="title">Targets for (b), ratios from this run</text>
${targets.join("\n")}
</svg>
`;
}
