// GET / on the admin port: one self-contained page (no external script, style,
// font or image) that polls admin/summary.json and queries admin/delegate.
// Every URL it uses is relative, so it works behind kubectl port-forward or a
// path prefix (kubectl proxy's /api/v1/.../proxy/). Data reaches the DOM only
// through textContent. The page is a constant: built once, at module load.
import { createHash } from "node:crypto";

const STYLE = `
:root{color-scheme:light dark;--mute:#777;--ok:#1a7f37;--bad:#c62828;--line:#8884}
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:0 1.5em 2em;max-width:72em}
header{display:flex;align-items:baseline;gap:1em;border-bottom:1px solid var(--line)}
h1{font-size:1.3em;margin:.6em 0}h2{font-size:1.1em;margin:1.4em 0 .4em}h3{font-size:1em;margin:.6em 0 .2em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2em .6em;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute)}.n{text-align:right;font-variant-numeric:tabular-nums}
.note,#status{color:var(--mute);font-size:.9em}#status.err,.err{color:var(--bad)}
.connected,.good{color:var(--ok)}.connecting,.closing,.soon{color:var(--bad)}
pre{background:#8881;padding:.5em;margin:0;white-space:pre-wrap;word-break:break-all}
code,pre,.mono,input,textarea{font-family:ui-monospace,monospace}
form{display:grid;grid-template-columns:auto 1fr;gap:.4em .8em;align-items:start;max-width:48em}
input,textarea,select{font-size:1em;padding:.2em}textarea{min-height:3.5em}button{justify-self:start;font-size:1em}
#play-steps li{margin:.2em 0}#play-steps .rule{font-family:ui-monospace,monospace}
.branch{margin-left:1.5em}dl{display:grid;grid-template-columns:auto 1fr;gap:.1em 1em}dt{color:var(--mute)}dd{margin:0}
`;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function cell(field, text, cls) {
  const td = el("td", text, cls);
  td.dataset.field = field;
  return td;
}
function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0) {
    const td = el("td", empty, "note");
    td.colSpan = cols;
    tbody.insertRow().append(td);
  }
}
const ms = (s) => (s === null ? "\\u2013" : (s * 1000).toFixed(s < 0.01 ? 2 : s < 0.1 ? 1 : 0) + " ms");
const pct = (n, d) => (d === 0 ? "\\u2013" : ((100 * n) / d).toFixed(2) + "%");
function until(iso) {
  const h = (Date.parse(iso) - Date.now()) / 3600e3;
  if (h < 0) return "expired";
  return "in " + (h < 48 ? h.toFixed(1) + " h" : (h / 24).toFixed(0) + " days");
}
let previous = new Map();
function render(s) {
  $("node").textContent = "\\u00b7 node " + s.node;
  const next = new Map();
  fill($("services").tBodies[0], s.services.map((x) => {
    const key = x.direction + " " + x.service;
    const p = previous.get(key);
    next.set(key, { n: x.requests, t: s.time });
    const rps = p && s.time > p.t && x.requests >= p.n ? ((x.requests - p.n) * 1000) / (s.time - p.t) : null;
    const tr = el("tr");
    tr.dataset.direction = x.direction;
    tr.dataset.service = x.service;
    tr.append(cell("direction", x.direction), cell("service", x.service, "mono"), cell("requests", x.requests, "n"),
      cell("rps", rps === null ? "\\u2013" : rps.toFixed(1), "n"),
      cell("success", pct(x.succeeded, x.requests), "n " + (x.succeeded === x.requests ? "good" : "err")),
      cell("p50", ms(x.latency.p50), "n"), cell("p95", ms(x.latency.p95), "n"), cell("p99", ms(x.latency.p99), "n"));
    return tr;
  }), "no requests yet", 8);
  previous = next;
  fill($("peers").tBodies[0], s.peers.map((p) => {
    const tr = el("tr");
    tr.dataset.node = p.node ?? "";
    tr.append(cell("node", p.node ?? "(not in discovery)"), cell("address", p.address + ":" + p.port, "mono"),
      cell("state", p.state, p.state), cell("streams", p.streams, "n"));
    return tr;
  }), "no connections to peers", 4);
  const c = s.tls.certificate;
  $("identity").textContent = s.tls.identity;
  $("cert").textContent = c === null ? "none yet: waiting for the identity service" : "serial " + c.serial + ", expires " + c.notAfter + " (" + until(c.notAfter) + ")";
  fill($("cas").tBodies[0], s.tls.cas.map((ca) => {
    const tr = el("tr");
    tr.append(cell("subject", ca.subject), cell("serial", ca.serial, "mono"), cell("expires", ca.notAfter + " (" + until(ca.notAfter) + ")"));
    return tr;
  }), "no CA", 3);
  $("dtab-outgoing").textContent = s.dtab.outgoing || "(empty)";
  $("dtab-incoming").textContent = s.dtab.incoming || "(empty)";
  const st = $("status");
  st.className = "";
  st.dataset.time = String(s.time);
  st.textContent = "updated " + new Date(s.time).toLocaleTimeString();
}
async function poll() {
  try {
    const r = await fetch("admin/summary.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    const st = $("status");
    st.className = "err";
    st.textContent = "summary unavailable: " + e.message;
  }
  setTimeout(poll, 1000);
}
function result(r) {
  const d = el("div");
  d.dataset.kind = r.kind;
  if (r.kind === "bound") {
    d.append(el("p", "bound " + r.id + (r.service ? " (service " + r.service + ")" : "")));
    const t = el("table");
    t.id = "play-endpoints";
    const head = t.createTHead().insertRow();
    head.append(el("th", "endpoint"), el("th", "node"));
    const body = t.createTBody();
    for (const e of r.endpoints) {
      const tr = body.insertRow();
      tr.append(cell("address", e.address, "mono"), cell("node", e.node ?? ""));
    }
    if (r.endpoints.length === 0) body.insertRow().append(el("td", "no ready endpoints", "err"));
    d.append(t);
  } else if (r.kind === "union") {
    d.append(el("p", "weighted union (one branch is chosen per request)"));
    for (const b of r.branches) {
      const w = el("div", null, "branch");
      w.append(el("p", "weight " + b.weight + " (" + (b.share * 100).toFixed(1) + "% of requests)"), result(b.result));
      d.append(w);
    }
  } else {
    d.append(el("p", r.kind + ": " + r.reason, "err"));
  }
  return d;
}
async function resolve(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ path: $("play-path").value.trim(), direction: $("play-direction").value });
  for (const line of $("play-dtab").value.split("\\n")) if (line.trim() !== "") q.append("dtab", line);
  const out = $("play-out");
  out.replaceChildren(el("p", "resolving\\u2026", "note"));
  try {
    const r = await fetch("admin/delegate?" + q.toString(), { cache: "no-store" });
    if (!r.ok) {
      const err = el("p", (await r.text()).trim(), "err");
      err.id = "play-error";
      out.replaceChildren(err);
      return;
    }
    const x = await r.json();
    const steps = el("ol");
    steps.id = "play-steps";
    for (const s of x.steps) {
      const li = el("li");
      li.style.marginLeft = s.depth * 1.5 + "em";
      li.append(el("span", s.path, "path mono"), " ");
      if (s.dentry !== undefined) li.append(el("span", s.table + " dentry " + s.index + ": " + s.dentry, "rule"), " \\u2192 ", el("span", s.tree, "to mono"));
      else li.append(el("span", "asks " + s.lookup, "rule"), s.rewritten === undefined ? "" : " \\u2192 ", el("span", s.rewritten ?? "", "to mono"));
      li.append(" ", el("span", "[" + s.outcome + "]", "outcome " + (s.outcome.startsWith("bound") ? "good" : "")));
      steps.append(li);
    }
    const res = result(x.result);
    res.id = "play-result";
    out.replaceChildren(el("h3", "steps"), steps, el("h3", "result"), res);
    if (x.dtab.override !== "") out.append(el("p", "extra dtab as read: " + x.dtab.override, "note mono"));
  } catch (e) {
    out.replaceChildren(el("p", "query failed: " + e.message, "err"));
  }
}
$("play").addEventListener("submit", resolve);
poll();
`;

const BODY = `
<header><h1>zt-mesh proxy <span id="node"></span></h1><span id="status">loading\u2026</span></header>
<main>
<section><h2>Requests</h2>
<table id="services"><thead><tr><th>direction</th><th>service</th><th class="n">requests</th><th class="n">req/s</th>
<th class="n">success</th><th class="n">p50</th><th class="n">p95</th><th class="n">p99</th></tr></thead><tbody></tbody></table>
<p class="note">From the counters <code>/metrics</code> reports, since the proxy started: requests is
<code>mesh_requests_total</code>; success is 2xx\u20134xx over all; p50, p95 and p99 are estimated from the buckets of
<code>mesh_request_duration_seconds</code> the way Prometheus' <code>histogram_quantile</code> does (linear
interpolation within the bucket). req/s is the change in requests between the page's last two polls (every second),
over the time between them as the proxy measured it.</p></section>
<section><h2>Peers</h2>
<table id="peers"><thead><tr><th>node</th><th>address</th><th>state</th><th class="n">open streams</th></tr></thead><tbody></tbody></table>
<p class="note">The HTTP/2 connections over mutual TLS this proxy holds to the proxies of other nodes (one per peer).</p></section>
<section><h2>Identity and trust</h2>
<dl><dt>identity</dt><dd id="identity" class="mono"></dd><dt>certificate</dt><dd id="cert"></dd></dl>
<h3>trusted CAs</h3>
<table id="cas"><thead><tr><th>subject</th><th>serial</th><th>expires</th></tr></thead><tbody></tbody></table></section>
<section><h2>Dtabs in force</h2>
<h3>outgoing</h3><pre id="dtab-outgoing"></pre><h3>incoming</h3><pre id="dtab-incoming"></pre></section>
<section><h2>Dtab playground</h2>
<form id="play">
<label for="play-path">name</label><input id="play-path" value="/svc/" spellcheck="false" autocomplete="off">
<label for="play-direction">direction</label><select id="play-direction"><option>outgoing</option><option>incoming</option></select>
<label for="play-dtab">extra dtab</label><textarea id="play-dtab" spellcheck="false" placeholder="/svc/web => /svc/web-v2;  (each line is read as one l5d-dtab header)"></textarea>
<span></span><button type="submit">resolve</button>
</form>
<div id="play-out"><p class="note">Only asks this proxy how the name would bind (<code>admin/delegate</code>); nothing is sent.</p></div>
</section>
</main>
`;

const sha256 = (text: string): string => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

export const ADMIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>zt-mesh proxy</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>
`;

/** Only the inline script and style above may run; nothing may be loaded from anywhere else. */
export const ADMIN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};
