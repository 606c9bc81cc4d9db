// The admin page as an operator sees it: headless Chromium (Debian's chromium,
// driven by playwright-core) opens node a's admin port through a path prefix,
// as `kubectl proxy` serves it, while traffic runs through the mesh. What the
// page shows is checked against /metrics, /admin/dtab and /admin/delegate
// read at the same moment. Screenshots go to test-results/admin-page/.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { type Server, createServer, request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, type Page, chromium } from "playwright-core";
import { ENDPOINTSLICES, endpointSlice } from "../support/fake-kube-api";
import { IDENTITY, MeshFixture } from "../support/mesh";
import { freePort, httpGet } from "../support/net";
import { waitFor } from "../support/wait";

const A = "127.0.0.2";
const B = "127.0.0.3";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(__dirname, "..", "..", "test-results", "admin-page");
/** Where `kubectl proxy` would serve the admin port of the mesh Service. */
const PREFIX = "/api/v1/namespaces/default/services/l5d:9990/proxy/";

// CI installs chromium (.ci/run), so its absence there is a failure; a
// developer without it sees the skip and its reason.
const missing = existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
const skip = missing !== undefined && process.env.CI !== "true" ? missing : false;

let mesh: MeshFixture;
let shop: Server;
let shopPort: number;
let prefixProxy: Server;
let browser: Browser;
let page: Page;
/** Requests to shop's /hold wait here until the test lets them go. */
const held: (() => void)[] = [];

const viaA = (url: string) => httpGet(A, mesh.ports.outgoing, url, { localAddress: A, headers: { host: new URL(url).host } });
const adminA = (path: string) => httpGet(A, mesh.ports.admin, path);

describe("the admin page in a real browser", { skip }, () => {
  before(async () => {
    if (missing !== undefined) throw new Error(`CI must run the browser test: ${missing}`);
    await mkdir(ARTIFACTS, { recursive: true });
    mesh = await MeshFixture.start();
    shopPort = await freePort([B]);
    shop = await startShop(shopPort);
    mesh.api.upsert(ENDPOINTSLICES, endpointSlice("default", "shop", [{ name: "http", port: shopPort }], [{ ip: B, node: "b" }]));
    await waitFor("node a to discover shop", () => mesh.nodes.a.proxy.index.lookup("default", "http", "shop").kind === "found");
    prefixProxy = await startPrefixProxy(mesh.ports.admin);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  });

  after(async () => {
    for (const release of held.splice(0)) release();
    await browser?.close();
    prefixProxy?.closeAllConnections();
    prefixProxy?.close();
    shop?.closeAllConnections();
    shop?.close();
    await mesh?.close();
  });

  it("is one small, read-only, self-contained page whose policy forbids loading anything from elsewhere", async () => {
    const r = await adminA("/");
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/html/);
    assert.ok(Buffer.byteLength(r.body) < 32 * 1024, `the page is ${Buffer.byteLength(r.body)} bytes`);
    const csp = String(r.headers["content-security-policy"]);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(r.body, /(src|href|fetch\()"?\//, "every URL the page uses is relative");
    assert.equal((await httpGet(A, mesh.ports.admin, "/", { method: "POST" })).status, 405, "the page is read-only, like the rest of the admin port");
  });

  it("shows per service and direction the requests, success rate and percentiles /metrics reports", async () => {
    const outside: string[] = [];
    const violations: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(`http://127.0.0.1:${portOf(prefixProxy)}${PREFIX}`) && !req.url().startsWith("data:")) outside.push(req.url());
    });
    page.on("console", (msg) => {
      if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
    });

    // Steady traffic to world while the page loads, and a fixed mix to shop
    // and to a name that does not bind.
    let running = true;
    const steady = (async () => {
      while (running) {
        await viaA("http://world/");
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const send = async (path: string, n: number) => {
      for (let i = 0; i < n; i++) await viaA(`http://shop${path}`);
    };
    await Promise.all([send("/status/200", 30), send("/status/503", 6), send("/status/404", 4), send("/slow/40", 10)]);
    for (let i = 0; i < 5; i++) assert.equal((await viaA("http://nowhere/")).status, 502);

    await page.goto(`http://127.0.0.1:${portOf(prefixProxy)}${PREFIX}`);
    await waitFor("the page to show a request rate for world", async () => Number((await table()).get("outgoing default/world")?.rps) > 0);
    running = false;
    await steady;

    // Requests in flight on the connection to node b are its open streams.
    const holding = Array.from({ length: 3 }, () => viaA("http://shop/hold"));
    await waitFor("the page to show 3 open streams to node b", async () => (await peers()).get("b")?.streams === "3");
    await page.screenshot({ path: join(ARTIFACTS, "under-traffic.png"), fullPage: true });
    await page.screenshot({ path: join(ARTIFACTS, "overview.png"), clip: { x: 0, y: 0, width: 1100, height: 640 } });
    for (const release of held.splice(0)) release();
    await Promise.all(holding);

    // With the traffic over, two polls later the page and a scrape must agree exactly.
    await pageUpdates(2);
    const shown = await table();
    const scraped = parseMetrics((await adminA("/metrics")).body);
    const series = requestSeries(scraped);
    assert.deepEqual([...shown.keys()].sort(), [...series.keys()].sort(), "the page lists the (direction, service) pairs /metrics has");
    for (const [key, s] of series) {
      const row = shown.get(key)!;
      assert.equal(Number(row.requests), s.total, `${key}: requests`);
      assert.equal(row.rps, "0.0", `${key}: no requests since the last poll`);
      closeTo(row.success, s.total === 0 ? NaN : (100 * s.succeeded) / s.total, `${key}: success rate`);
      for (const [col, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]] as const) {
        closeTo(row[col], 1000 * histogramQuantile(q, s.buckets), `${key}: ${col}`);
      }
    }
    // What that mix must come to, whatever the page's rounding.
    assert.equal(shown.get("outgoing default/shop")?.requests, "53");
    assert.equal(shown.get("outgoing default/shop")?.success, "88.68%");
    assert.equal(shown.get("outgoing unbound")?.success, "0.00%");
    const { p50, p99 } = shown.get("outgoing default/shop")!;
    assert.ok(Number.parseFloat(p50!) < 25 && Number.parseFloat(p99!) > 25, `shop's slow tail shows in p99 (${p99}), not in p50 (${p50})`);

    assert.deepEqual(await peers(), new Map([["b", { address: `${B}:${mesh.ports.incoming}`, state: "connected", streams: "0" }]]));
    assert.deepEqual(outside, [], "the page loads nothing from anywhere but its own prefix");
    assert.deepEqual(violations, []);
  });

  it("shows the identity, the certificate's and every CA's expiry, and the dtabs in force", async () => {
    const scraped = parseMetrics((await adminA("/metrics")).body);
    const expiry = (certificate: string): string => {
      const s = scraped.find((m) => m.name === "mesh_certificate_expiry_timestamp_seconds" && m.labels.certificate === certificate);
      assert.ok(s !== undefined, `no expiry for ${certificate} in /metrics`);
      return new Date(s.value * 1000).toISOString().replace(".000Z", "");
    };
    assert.equal(await text("#identity"), IDENTITY);
    assert.match(await text("#cert"), new RegExp(`expires ${expiry("mesh")}`));
    const cas = await page.locator("#cas tbody tr").all();
    const caSerials = scraped.filter((m) => m.labels.certificate?.startsWith("ca:")).map((m) => m.labels.certificate!.slice(3));
    assert.equal(cas.length, caSerials.length);
    for (const [i, serial] of caSerials.entries()) {
      assert.equal(await cas[i]!.locator("td[data-field=serial]").textContent(), serial);
      assert.match((await cas[i]!.locator("td[data-field=expires]").textContent()) ?? "", new RegExp(`^${expiry(`ca:${serial}`)}`));
    }
    const dtab = JSON.parse((await adminA("/admin/dtab")).body) as { outgoing: string; incoming: string };
    assert.equal(await text("#dtab-outgoing"), dtab.outgoing);
    assert.equal(await text("#dtab-incoming"), dtab.incoming);
  });

  it("resolves a name with an extra dtab in the playground, step by step, down to the endpoints it binds", async () => {
    await page.fill("#play-path", "/svc/web");
    await page.fill("#play-dtab", "/svc/web => /svc/shop;");
    await page.click("#play button");
    await page.locator("#play-result").waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "playground.png"), fullPage: true });

    const steps = await page.locator("#play-steps li").allTextContents();
    const answer = JSON.parse(
      (await adminA(`/admin/delegate?path=/svc/web&dtab=${encodeURIComponent("/svc/web => /svc/shop;")}`)).body,
    ) as { steps: { path: string; dentry?: string; tree?: string; lookup?: string; outcome: string }[] };
    assert.equal(steps.length, answer.steps.length, `steps shown: ${steps.join(" | ")}`);
    answer.steps.forEach((s, i) => {
      for (const part of [s.path, s.dentry, s.tree, s.lookup, s.outcome]) if (part !== undefined) assert.ok(steps[i]!.includes(part), `step ${i + 1} "${steps[i]}" shows ${part}`);
    });
    assert.match(steps[0]!, /^\/svc\/web override dentry 1: \/svc\/web => \/svc\/shop; → \/svc\/shop/);
    assert.match(steps[1]!, /^\/svc\/shop base dentry 1: \/svc => \/#\/io\.l5d\.k8s\/default\/http; → \/#\/io\.l5d\.k8s\/default\/http\/shop/);
    assert.match(steps.at(-1)!, /asks \/#\/io\.l5d\.k8s.*\[bound/);
    assert.deepEqual(await page.locator("#play-endpoints tbody tr").allTextContents(), [`${B}:${shopPort}b`]);
    assert.equal(await text("#play-endpoints td[data-field=node]"), "b");
  });

  it("shows a refused query's reason as text, markup included, never as markup", async () => {
    await page.fill("#play-path", "/svc/web");
    await page.fill("#play-dtab", "/svc/web => <img src=x>;");
    await page.click("#play button");
    await page.locator("#play-error").waitFor();
    assert.match(await text("#play-error"), /<img src=x>/);
    assert.equal(await page.locator("#play-out img").count(), 0);
  });
});

// --- the page, read as the operator sees it ---

type Row = Record<string, string | undefined>;

/** The request table as shown, by "direction service", in one read of the DOM. */
async function table(): Promise<Map<string, Row>> {
  const rows = (await page.evaluate(`[...document.querySelectorAll("#services tbody tr[data-service]")].map((tr) =>
    [tr.dataset.direction + " " + tr.dataset.service, Object.fromEntries([...tr.cells].map((td) => [td.dataset.field, td.textContent]))])`)) as [string, Row][];
  return new Map(rows);
}

async function peers(): Promise<Map<string, Row>> {
  const rows = (await page.evaluate(`[...document.querySelectorAll("#peers tbody tr[data-node]")].map((tr) =>
    [tr.dataset.node, Object.fromEntries([...tr.cells].filter((td) => td.dataset.field !== "node").map((td) => [td.dataset.field, td.textContent]))])`)) as [string, Row][];
  return new Map(rows);
}

async function text(selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? "";
}

/** Waits until the page has shown `n` more summaries than it had. */
async function pageUpdates(n: number): Promise<void> {
  let seen = await page.locator("#status").getAttribute("data-time");
  for (let i = 0; i < n; i++) {
    const last = seen;
    await waitFor("the page to poll again", async () => (seen = await page.locator("#status").getAttribute("data-time")) !== last, { timeoutMs: 5000 });
  }
}

/** A figure the page rounded: equal to `expected` to within its last shown digit. */
function closeTo(shown: string | undefined, expected: number, what: string): void {
  if (Number.isNaN(expected)) {
    assert.equal(shown, "–", what);
    return;
  }
  const m = /^(-?\d+)(?:\.(\d+))?\s*(ms|%)$/.exec(shown ?? "");
  assert.ok(m !== null, `${what}: "${shown}" is not a figure`);
  const tolerance = 0.5 * 10 ** -(m[2]?.length ?? 0) + 1e-9;
  assert.ok(Math.abs(Number.parseFloat(shown!) - expected) <= tolerance, `${what}: page shows ${shown}, /metrics gives ${expected}`);
}

// --- /metrics, read as Prometheus reads it ---

interface MetricSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
  }
  return out;
}

interface Series {
  total: number;
  succeeded: number;
  buckets: { le: number; count: number }[];
}

function requestSeries(samples: readonly MetricSample[]): Map<string, Series> {
  const out = new Map<string, Series>();
  const get = (l: Record<string, string>): Series => {
    const key = `${l.direction} ${l.service}`;
    let s = out.get(key);
    if (s === undefined) out.set(key, (s = { total: 0, succeeded: 0, buckets: [] }));
    return s;
  };
  for (const m of samples) {
    if (m.name === "mesh_requests_total") {
      const s = get(m.labels);
      s.total += m.value;
      if (["2xx", "3xx", "4xx"].includes(m.labels.status_class!)) s.succeeded += m.value;
    } else if (m.name === "mesh_request_duration_seconds_bucket") {
      get(m.labels).buckets.push({ le: m.labels.le === "+Inf" ? Infinity : Number(m.labels.le), count: m.value });
    }
  }
  return out;
}

/** Prometheus' histogram_quantile over one series' cumulative buckets (promql/quantile.go, bucketQuantile). */
function histogramQuantile(q: number, buckets: readonly { le: number; count: number }[]): number {
  const sorted = [...buckets].sort((x, y) => x.le - y.le);
  const observations = sorted.at(-1)!.count;
  if (observations === 0) return NaN;
  const rank = q * observations;
  let b = 0;
  while (b < sorted.length - 1 && sorted[b]!.count < rank) b++;
  if (b === sorted.length - 1) return sorted[sorted.length - 2]!.le;
  if (b === 0 && sorted[0]!.le <= 0) return sorted[0]!.le;
  let bucketStart = 0;
  let count = sorted[b]!.count;
  let r = rank;
  if (b > 0) {
    bucketStart = sorted[b - 1]!.le;
    count -= sorted[b - 1]!.count;
    r -= sorted[b - 1]!.count;
  }
  return bucketStart + (sorted[b]!.le - bucketStart) * (r / count);
}

// --- the other side: a backend, and a path-prefix proxy ---

/** shop answers /status/<code> with that status, /slow/<ms> after that long, /hold when the test lets it. */
async function startShop(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const [, what, arg] = (req.url ?? "/").split("/");
    const answer = (status: number) => {
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(`shop ${status}`);
    };
    if (what === "status") answer(Number(arg));
    else if (what === "slow") setTimeout(() => answer(200), Number(arg));
    else if (what === "hold") held.push(() => answer(200));
    else answer(200);
  });
  await new Promise<void>((r) => server.listen(port, B, r));
  return server;
}

/** Serves the admin port under PREFIX, as `kubectl proxy` does: a page that used absolute paths would break here. */
async function startPrefixProxy(adminPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? "";
    if (!url.startsWith(PREFIX)) {
      res.writeHead(404).end("outside the prefix");
      return;
    }
    const up = request({ host: A, port: adminPort, path: `/${url.slice(PREFIX.length)}`, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}
