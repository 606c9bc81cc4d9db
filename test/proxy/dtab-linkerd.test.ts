// Vectors from linkerd 1's and Finagle's documented dtab semantics (the linkerd
// 1 "Dtabs" and "Namers" pages, Finagle's Names guide, NameTree and Namer): a
// linkerd 1 routing table behaves the same here, or is refused with a reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseConfig } from "@zt-mesh/proxy-config";
import type { LiveSettings } from "../../proxy/src/config/live";
import { compileSettings } from "../../proxy/src/config/live";
import { parseDtab, parsePath, showDtab, showWeight } from "@zt-mesh/proxy-config";
import { DtabHeaderCache, splitDtabLines } from "../../proxy/src/routing/dtab-header";
import { DelegationExplainer } from "../../proxy/src/routing/explain";
import { Resolver } from "../../proxy/src/routing/resolve";
import { lookupSystem } from "../../proxy/src/routing/system-names";
import { tableNamer } from "../support/table-namer";

const resolver = new Resolver(
  new Map([
    [
      "io.l5d.k8s",
      tableNamer({
        "default/http/world": ["10.0.0.1:80"],
        "staging/http/world": ["10.0.2.1:80"],
        "default/http/web-v1": ["10.0.3.1:80"],
        "default/http/smitten": ["10.0.4.1:80"],
        "default/http/payments": ["10.0.5.1:80"],
      }),
    ],
  ]),
);
const BASE = "/svc => /#/io.l5d.k8s/default/http;";

/** What one request for `name` binds to, as a short string. */
function outcome(dtab: string, name: string, extra?: string): string {
  const dtabs = extra === undefined ? [parseDtab(dtab)] : [parseDtab(dtab), parseDtab(extra)];
  const r = resolver.resolve(dtabs, parsePath(name));
  return r.kind === "bound" ? r.dest.id : `${r.kind}: ${r.reason}`;
}

/** The share of `n` requests for `name` that bind to each outcome kind or id. */
function shares(dtab: string, name: string, n = 4000): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const key = outcome(dtab, name).split(":")[0]!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / n]));
}

describe("parsing as Finagle's NameTreeParsers", () => {
  it("'#' starts a comment running to the end of the line wherever whitespace may stand", () => {
    const commented = [
      "# delegation for /s",
      "/s => /a      # prefer /a",
      "    | ( /b    # or share traffic between /b and /c",
      "      & /c",
      "      );",
    ].join("\n");
    assert.deepEqual(parseDtab(commented), parseDtab("/s => /a | (/b & /c);"));
  });

  it("'#' inside a label is an ordinary character, so /#/ names still parse", () => {
    assert.deepEqual(parsePath("/#/io.l5d.k8s/a#b"), ["#", "io.l5d.k8s", "a#b"]);
    assert.equal(showDtab(parseDtab("/svc => /#/io.l5d.k8s/default/http; # the default route")), BASE);
  });

  it("a comment at the end of an l5d-dtab header runs to the end of that header", () => {
    const r = new DtabHeaderCache().parse("/svc/web => /#/io.l5d.k8s/default/http/web-v1 # canary");
    assert.ok(r.ok);
    assert.equal(r.ok && showDtab(r.dtab), "/svc/web => /#/io.l5d.k8s/default/http/web-v1;");
  });
});

describe("printing weights so that the parser reads them back", () => {
  for (const [weight, text] of [
    [1e-7, "0.0000001"],
    [1.5e-7, "0.00000015"],
    [1e21, "1000000000000000000000"],
    [1.25e22, "12500000000000000000000"],
    [0.25, "0.25"],
    [9, "9"],
  ] as const) {
    it(`prints ${String(weight)} as ${text}, without exponent notation`, () => {
      assert.equal(showWeight(weight), text);
      const printed = showDtab(parseDtab(`/s => ${text} * /a & /b`));
      assert.equal(printed, `/s => ${text} * /a & /b;`);
      assert.deepEqual(parseDtab(printed), parseDtab(`/s => ${text} * /a & /b`));
    });
  }
});

describe("/$/fail and /$/nil are the long forms of ! and $ (Finagle Namer.global)", () => {
  it("/$/fail fails the request instead of falling back to an earlier dentry", () => {
    assert.match(outcome(BASE, "/svc/payments", "/svc/payments => /$/fail"), /^fail: delegated to \/\$\/fail/);
    assert.match(outcome(BASE, "/svc/payments", "/svc/payments => !"), /^fail: /, "the same as !");
  });

  it("/$/fail stops alternatives: /$/fail | /smitten does not route to smitten", () => {
    assert.match(outcome(BASE, "/svc/x", "/svc/x => /$/fail | /svc/smitten"), /^fail: /);
    assert.match(outcome(BASE, "/svc/x", "/svc/x => ! | /svc/smitten"), /^fail: /);
  });

  it("/$/nil binds to nothing, which is not negative: alternatives stop and the request fails", () => {
    assert.match(outcome(BASE, "/svc/x", "/svc/x => /$/nil | /svc/smitten"), /^empty: delegated to \/\$\/nil/);
    assert.match(outcome(BASE, "/svc/x", "/svc/x => $ | /svc/smitten"), /^empty: /, "the same as $");
  });

  it("only ~ falls through to the next alternative", () => {
    assert.equal(outcome(BASE, "/svc/x", "/svc/x => ~ | /svc/smitten"), "/#/io.l5d.k8s/default/http/smitten");
  });
});

describe("weighted unions (Finagle NameTree.Union and Drv)", () => {
  it("a branch bound to nothing keeps its weight: 9 * /svc/web-v1 & 1 * /$/nil fails about 10%", () => {
    const s = shares(`${BASE} /svc/web => 9 * /svc/web-v1 & 1 * /$/nil;`, "/svc/web");
    const failed = s.get("empty") ?? 0;
    assert.ok(failed > 0.07 && failed < 0.13, `failed share ${failed}`);
    assert.ok((s.get("/#/io.l5d.k8s/default/http/web-v1") ?? 0) > 0.87);
  });

  it("a branch that cannot be bound keeps its weight too, and its share fails", () => {
    const s = shares(`${BASE} /svc/web => /svc/web-v1 & /$/inet/host/99999;`, "/svc/web");
    const failed = s.get("error") ?? 0;
    assert.ok(failed > 0.45 && failed < 0.55, `failed share ${failed}`);
  });

  it("all-zero weights split evenly", () => {
    const s = shares(`${BASE} /svc/web => 0 * /svc/web-v1 & 0 * /svc/world;`, "/svc/web");
    const v1 = s.get("/#/io.l5d.k8s/default/http/web-v1") ?? 0;
    assert.ok(v1 > 0.45 && v1 < 0.55, `web-v1 share ${v1}`);
  });

  it("a zero weight beside positive ones is never chosen", () => {
    const s = shares(`${BASE} /svc/web => 0 * /svc/world & 1 * /svc/web-v1;`, "/svc/web", 1000);
    assert.equal(s.get("/#/io.l5d.k8s/default/http/web-v1"), 1);
  });

  it("0 * /a & ! routes to /a: an explicitly failed branch leaves the union", () => {
    const s = shares(`${BASE} /svc/web => 0 * /svc/web-v1 & !;`, "/svc/web", 1000);
    assert.equal(s.get("/#/io.l5d.k8s/default/http/web-v1"), 1);
  });

  it("a union of only negative branches is negative, so the next alternative is tried", () => {
    const dtab = `${BASE} /svc/web => (/#/io.l5d.k8s/default/http/missing & ~) | /svc/smitten;`;
    assert.equal(outcome(dtab, "/svc/web"), "/#/io.l5d.k8s/default/http/smitten");
    assert.equal(outcome(`${BASE} /svc/web => (! & !) | /svc/smitten;`, "/svc/web"), "/#/io.l5d.k8s/default/http/smitten");
  });

  it("binding keeps the union whole, with its weights, for the per-request choice", () => {
    const r = resolver.bind([parseDtab(`${BASE} /svc/web => 3 * /svc/web-v1 & 1 * $;`)], parsePath("/svc/web"));
    assert.equal(r.kind, "union");
    assert.deepEqual(
      r.kind === "union" && r.branches.map((b) => [b.weight, b.res.kind]),
      [
        [3, "bound"],
        [1, "empty"],
      ],
    );
  });
});

describe("dentries for bound and system names apply before the namer (linkerd 1 interpreter)", () => {
  it("/#/io.l5d.k8s/default/http/world => /#/io.l5d.k8s/staging/http/world redirects world to staging", () => {
    const dtab = `${BASE} /#/io.l5d.k8s/default/http/world => /#/io.l5d.k8s/staging/http/world;`;
    assert.equal(outcome(dtab, "/svc/world"), "/#/io.l5d.k8s/staging/http/world");
    assert.equal(outcome(dtab, "/svc/smitten"), "/#/io.l5d.k8s/default/http/smitten", "other names still reach the namer");
  });

  it("works from an l5d-dtab layered on the base dtab", () => {
    const r = new DtabHeaderCache().parse("/#/io.l5d.k8s/default/http/world=>/#/io.l5d.k8s/staging/http/world");
    assert.ok(r.ok);
    const res = resolver.resolve([parseDtab(BASE), r.ok ? r.dtab : []], ["svc", "world"]);
    assert.equal(res.kind === "bound" && res.dest.id, "/#/io.l5d.k8s/staging/http/world");
  });

  it("a /$/ name can be rewritten too", () => {
    assert.equal(outcome(`/svc => /$/nil; /$/nil => /#/io.l5d.k8s/default/http/world;`, "/svc/x"), "/#/io.l5d.k8s/default/http/world");
  });

  it("the namer is asked only when no dentry matches the bound name", () => {
    assert.match(outcome(`${BASE} /#/io.l5d.k8s/default/http/world => ~;`, "/svc/world"), /^neg: delegated to ~/);
  });
});

describe("/$/inet and /$/fixedinet (Finagle Namer.global, Resolver)", () => {
  const address = (path: string) => {
    const r = resolver.resolve([parseDtab(`/svc/x => ${path}`)], ["svc", "x"]);
    return r.kind === "bound" && r.dest.kind === "inet" ? `${r.dest.id} -> ${r.dest.host}:${r.dest.port}` : `${r.kind}`;
  };

  it("/$/inet/<port> is this host", () => {
    assert.equal(address("/$/inet/8080"), "/$/inet/8080 -> 127.0.0.1:8080");
  });

  it("/$/inet/<host>/<port> and /$/fixedinet/<host>/<port> are that address", () => {
    assert.equal(address("/$/inet/127.0.0.9/81"), "/$/inet/127.0.0.9/81 -> 127.0.0.9:81");
    assert.equal(address("/$/fixedinet/localhost/82"), "/$/fixedinet/localhost/82 -> localhost:82");
  });

  it("a malformed address cannot be bound, and says what form it expected", () => {
    assert.match(outcome("/svc/x => /$/inet/host/0", "/svc/x"), /^error: malformed \/\$\/inet\/host\/0: expected \/\$\/inet\/<host>\/<port>/);
  });
});

describe("linkerd 1's rewriting namers (Namers page, 'Rewriting Namers')", () => {
  const rewrite = (path: string): string => {
    const r = lookupSystem(parsePath(path));
    return r.kind === "rewrite" ? "/" + r.path.join("/") : r.kind;
  };

  it("io.buoyant.rinet: /$/io.buoyant.rinet/<port>/<host> is /$/inet/<host>/<port>", () => {
    const r = resolver.resolve([parseDtab("/svc => /$/io.buoyant.rinet/8080")], ["svc", "127.0.0.7"]);
    assert.deepEqual(r.kind === "bound" && r.dest, { kind: "inet", id: "/$/io.buoyant.rinet/8080/127.0.0.7", host: "127.0.0.7", port: 8080 });
    assert.equal(rewrite("/$/io.buoyant.rinet/8080"), "neg", "without a host it is negative");
  });

  it("io.buoyant.hostportPfx: /pfx/host:port/etc is rewritten to /pfx/host/port/etc", () => {
    assert.equal(rewrite("/$/io.buoyant.hostportPfx/pfx/host:port/etc"), "/pfx/host/port/etc");
    // The documented use: /ip-hostport => /$/inet; /svc => /$/io.buoyant.hostportPfx/ip-hostport;
    const dtab = "/ip-hostport => /$/inet; /svc => /$/io.buoyant.hostportPfx/ip-hostport;";
    assert.equal(outcome(dtab, "/svc/127.0.0.5:8080"), "/$/inet/127.0.0.5/8080");
  });

  it("io.buoyant.porthostPfx: /pfx/host:port/etc is rewritten to /pfx/port/host/etc", () => {
    assert.equal(rewrite("/$/io.buoyant.porthostPfx/pfx/host:port/etc"), "/pfx/port/host/etc");
    // The documented use: /k8s-porthost => /#/io.l5d.k8s/default; /svc => /$/io.buoyant.porthostPfx/k8s-porthost;
    const dtab = "/k8s-porthost => /#/io.l5d.k8s/default; /svc => /$/io.buoyant.porthostPfx/k8s-porthost;";
    assert.equal(outcome(dtab, "/svc/world:http"), "/#/io.l5d.k8s/default/http/world");
  });

  it("io.buoyant.http.domainToPathPfx: /pfx/foo.buoyant.io/resource/name is /pfx/io/buoyant/foo/resource/name", () => {
    assert.equal(rewrite("/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io/resource/name"), "/pfx/io/buoyant/foo/resource/name");
  });

  it("io.buoyant.http.subdomainOfPfx: /buoyant.io/pfx/foo.buoyant.io/resource/name is /pfx/foo/resource/name", () => {
    assert.equal(rewrite("/$/io.buoyant.http.subdomainOfPfx/buoyant.io/pfx/foo.buoyant.io/resource/name"), "/pfx/foo/resource/name");
    assert.equal(rewrite("/$/io.buoyant.http.subdomainOfPfx/buoyant.io/pfx/foo.example.com"), "neg", "not a subdomain: negative");
  });

  it("a name that does not fit the form is negative, so the next alternative is tried", () => {
    assert.equal(rewrite("/$/io.buoyant.hostportPfx/pfx/no-port"), "neg");
    const dtab = "/ip => /$/inet; /svc => /$/io.buoyant.hostportPfx/ip | /#/io.l5d.k8s/default/http;";
    assert.equal(outcome(dtab, "/svc/world"), "/#/io.l5d.k8s/default/http/world");
  });
});

describe("l5d-dtab header lines", () => {
  it("several lines are each parsed on their own: a comment on one does not swallow the next", () => {
    const r = new DtabHeaderCache().parse(["/svc/web => /svc/world # first", "/svc/web => /svc/web-v1"]);
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.equal(r.ok && r.dtab.length, 2);
  });

  it("are layered in order: a later line takes precedence over an earlier one", () => {
    const r = new DtabHeaderCache().parse(["/svc/web => /svc/world", "/svc/web => /svc/web-v1"]);
    const res = resolver.resolve([parseDtab(BASE), r.ok ? r.dtab : []], ["svc", "web"]);
    assert.equal(res.kind === "bound" && res.dest.id, "/#/io.l5d.k8s/default/http/web-v1");
  });

  it("a bad line is named by its number", () => {
    const r = new DtabHeaderCache().parse(["/svc/web => /svc/world", "/svc/x => ("]);
    assert.match(r.ok ? "" : r.error, /^bad l5d-dtab header \(line 2 of 2\): expected a path/);
  });

  it("the lines node:http joins with ', ' are put back from the raw header list, in order", () => {
    const headers: Record<string, string | string[]> = { "l5d-dtab": "/a=>/b # x, /c=>/d", host: "web" };
    splitDtabLines(headers, ["Host", "web", "L5d-Dtab", "/a=>/b # x", "x-other", "1", "l5d-dtab", "/c=>/d"]);
    assert.deepEqual(headers["l5d-dtab"], ["/a=>/b # x", "/c=>/d"]);
    const single: Record<string, string | string[]> = { "l5d-dtab": "/a=>/b" };
    splitDtabLines(single, ["l5d-dtab", "/a=>/b"]);
    assert.equal(single["l5d-dtab"], "/a=>/b", "a single line stays as it is");
  });
});

describe("names that cannot exist are refused where the dtab enters", () => {
  it("config load names the dentry and its offset for an unconfigured /#/ namer", () => {
    assert.throws(
      () => parseConfig({ outgoing: { dtab: "/svc => /#/io.l5d.k8s/default/http;\n/svc/x => /#/io.l5d.consul/dc1;" } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems[0] ===
          "outgoing.dtab: bad dtab: dentry 2 at offset 36 (/svc/x => /#/io.l5d.consul/dc1): /#/io.l5d.consul is not a configured namer (configured: /#/io.l5d.k8s)",
    );
  });

  it("config load names the dentry for an unknown /$/ name, wherever it sits in the tree", () => {
    assert.throws(
      () => parseConfig({ incoming: { dtab: "/svc => /#/io.l5d.k8s/default/http | (1 * /$/inet6/x/1 & /a);" } }),
      (err: unknown) =>
        err instanceof ConfigError && /^incoming\.dtab: bad dtab: dentry 1 at offset 0 \(.*\): \/\$\/inet6 is not a system name \(known: /.test(err.problems[0] ?? ""),
    );
  });

  it("a name some dentry rewrites is not unknown, since dentries apply first", () => {
    const c = parseConfig({ outgoing: { dtab: "/#/io.l5d.consul => /#/io.l5d.k8s; /svc => /#/io.l5d.consul/default/http;" } });
    assert.equal(outcome(c.outgoing.dtab, "/svc/world"), "/#/io.l5d.k8s/default/http/world");
  });

  it("an l5d-dtab header gets the same message (the router answers it with 400)", () => {
    const r = new DtabHeaderCache().parse("/svc=>/#/io.l5d.consul/dc1");
    assert.equal(
      r.ok ? "" : r.error,
      "bad l5d-dtab header: dentry 1 at offset 0 (/svc => /#/io.l5d.consul/dc1): /#/io.l5d.consul is not a configured namer (configured: /#/io.l5d.k8s)",
    );
  });
});

describe("explaining a resolution (GET /admin/delegate)", () => {
  const settings: LiveSettings = compileSettings(parseConfig({ outgoing: { dtab: `${BASE} /svc/web => 9 * /svc/web-v1 & 1 * /$/nil;` } }));
  const explainer = new DelegationExplainer(() => settings, { outgoing: resolver, incoming: resolver }, new DtabHeaderCache(4));
  const explain = (query: string) => explainer.explainQuery(new URLSearchParams(query));

  it("lists each delegation step with the dentry that matched and the tree it produced", () => {
    const a = explain("path=/svc/world");
    assert.ok(a.ok);
    const steps = a.ok ? a.explanation.steps : [];
    assert.deepEqual(steps[0], {
      depth: 0,
      path: "/svc/world",
      dentry: "/svc => /#/io.l5d.k8s/default/http;",
      table: "base",
      index: 1,
      tree: "/#/io.l5d.k8s/default/http/world",
      outcome: "bound /#/io.l5d.k8s/default/http/world",
    });
    assert.deepEqual(steps[1], {
      depth: 1,
      path: "/#/io.l5d.k8s/default/http/world",
      lookup: "/#/io.l5d.k8s",
      outcome: "bound /#/io.l5d.k8s/default/http/world",
    });
    assert.deepEqual(a.ok && a.explanation.result, {
      kind: "bound",
      id: "/#/io.l5d.k8s/default/http/world",
      service: "default/world",
      endpoints: [{ address: "10.0.0.1:80", node: "n" }],
    });
  });

  it("shows a weighted union with each branch's share instead of making a choice", () => {
    const a = explain("path=/svc/web");
    const result = a.ok ? a.explanation.result : undefined;
    assert.equal(result?.kind, "union");
    assert.deepEqual(
      result?.kind === "union" && result.branches.map((b) => [b.weight, b.share, b.result.kind]),
      [
        [9, 0.9, "bound"],
        [1, 0.1, "empty"],
      ],
    );
  });

  it("layers extra dtab lines, read as l5d-dtab lines, over the base", () => {
    const a = explain(
      "path=/svc/world&dtab=" + encodeURIComponent("/svc/world => /svc/smitten # try smitten") + "&dtab=" + encodeURIComponent("/svc/smitten => /svc/payments"),
    );
    assert.ok(a.ok);
    assert.equal(a.ok && a.explanation.dtab.override, "/svc/world => /svc/smitten;\n/svc/smitten => /svc/payments;");
    assert.equal(a.ok && a.explanation.result.kind === "bound" && a.explanation.result.id, "/#/io.l5d.k8s/default/http/payments");
    assert.deepEqual(
      a.ok && a.explanation.steps.filter((s) => s.table === "override").map((s) => [s.path, s.index]),
      [
        ["/svc/world", 1],
        ["/svc/smitten", 2],
      ],
    );
  });

  it("refuses what a request would be refused for, with the same message", () => {
    assert.deepEqual(explain("dtab=/a=>/b"), { ok: false, error: "missing query parameter path (e.g. ?path=/svc/world)" });
    const bad = explain("path=/svc/x&dtab=" + encodeURIComponent("/svc=>/#/io.l5d.consul/dc1"));
    assert.match(bad.ok ? "" : bad.error, /^bad l5d-dtab header: dentry 1 at offset 0 .* is not a configured namer/);
    const badPath = explain("path=svc");
    assert.match(badPath.ok ? "" : badPath.error, /^bad path: expected '\/'/);
    const badDirection = explain("path=/svc/x&direction=sideways");
    assert.equal(badDirection.ok ? "" : badDirection.error, 'direction must be outgoing or incoming, not "sideways"');
  });
});
