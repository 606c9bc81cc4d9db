import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DtabError, MAX_NESTING, parseDtab, parsePath, showDtab } from "@zt-mesh/proxy-config";
import { DtabHeaderCache } from "../../proxy/src/routing/dtab-header";
import { type Chosen, Resolver } from "../../proxy/src/routing/resolve";
import { tableNamer } from "../support/table-namer";

describe("dtab parser", () => {
  it("parses the classic linkerd dtab", () => {
    const d = parseDtab("/svc => /#/io.l5d.k8s/default/http;");
    assert.equal(d.length, 1);
    assert.equal(showDtab(d), "/svc => /#/io.l5d.k8s/default/http;");
  });

  it("accepts the l5d-dtab header form without spaces and several dentries", () => {
    const d = parseDtab("/svc=>/#/io.l5d.k8s/default/admin/l5d;/foo=>/bar");
    assert.equal(showDtab(d), "/svc => /#/io.l5d.k8s/default/admin/l5d;\n/foo => /bar;");
  });

  it("parses alternation, weighted unions, neg, fail, empty, wildcards and escapes", () => {
    const d = parseDtab("/s/* => /a | (0.8 * /b & 0.2 * /c) | ~ | ! | $; /x\\x2fy => /z");
    // '&' binds tighter than '|', so the printed form needs no parentheses.
    assert.equal(showDtab(d), "/s/* => /a | 0.8 * /b & 0.2 * /c | ~ | ! | $;\n/x\\x2fy => /z;");
    assert.deepEqual(parseDtab(showDtab(d)), d, "printing and parsing round-trips");
    assert.deepEqual(parsePath("/x\\x2fy"), ["x/y"]);
  });

  it("accepts an empty dtab", () => {
    assert.deepEqual(parseDtab("  "), []);
  });

  for (const [text, where] of [
    ["/svc => ", "expected a path"],
    ["/svc =>> /x", "expected a path"],
    ["svc => /x", "expected '/'"],
    ["/svc -> /x", "expected '=>'"],
    ["/svc => /a//b", "empty path label"],
    ["/svc => /a; garbage", "expected '/'"],
    ["/svc => (/a", "expected ')'"],
    ["/svc => /a\\zz", "bad escape"],
    ["/svc => 2 /a", "expected '*'"],
  ] as const) {
    it(`rejects ${JSON.stringify(text)} naming the offending text`, () => {
      assert.throws(
        () => parseDtab(text),
        (err: unknown) => err instanceof DtabError && err.message.includes(where) && /at offset \d+ near "/.test(err.message),
      );
    });
  }

  it("bounds nesting so hostile headers cannot exhaust the stack", () => {
    const deep = "/a => " + "(".repeat(MAX_NESTING + 1) + "/b" + ")".repeat(MAX_NESTING + 1);
    assert.throws(() => parseDtab(deep), /nesting deeper than/);
    const ok = "/a => " + "(".repeat(MAX_NESTING) + "/b" + ")".repeat(MAX_NESTING);
    assert.equal(parseDtab(ok).length, 1);
  });
});

describe("name resolution", () => {
  const resolver = new Resolver(
    new Map([["io.l5d.k8s", tableNamer({ "default/http/world": ["10.0.0.1:80"], "default/admin/l5d": ["10.0.0.9:9990"], "other/http/world": ["10.0.1.1:80"] })]]),
  );
  const base = parseDtab("/svc => /#/io.l5d.k8s/default/http;");
  const bound = (r: Chosen): string => (r.kind === "bound" ? r.dest.id : `${r.kind}: ${r.reason}`);

  it("binds /svc/<host> to the Service port through the base dtab", () => {
    assert.equal(bound(resolver.resolve([base], ["svc", "world"])), "/#/io.l5d.k8s/default/http/world");
  });

  it("lets a per-request override take precedence over the base dtab", () => {
    const override = parseDtab("/svc=>/#/io.l5d.k8s/default/admin/l5d;");
    assert.equal(bound(resolver.resolve([base, override], ["svc", "anything"])), "/#/io.l5d.k8s/default/admin/l5d");
  });

  it("falls back to earlier dentries when a later one binds to a Service that does not exist", () => {
    const dtab = parseDtab("/svc => /#/io.l5d.k8s/default/http; /svc => /#/io.l5d.k8s/missing/http;");
    assert.equal(bound(resolver.resolve([dtab], ["svc", "world"])), "/#/io.l5d.k8s/default/http/world");
  });

  it("takes the first alternative that binds", () => {
    const dtab = parseDtab("/svc => /#/io.l5d.k8s/staging/http | /#/io.l5d.k8s/other/http;");
    assert.equal(bound(resolver.resolve([dtab], ["svc", "world"])), "/#/io.l5d.k8s/other/http/world");
  });

  it("splits a weighted union by weight", () => {
    const dtab = parseDtab("/svc => 3 * /#/io.l5d.k8s/default/http & 1 * /#/io.l5d.k8s/other/http;");
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const id = bound(resolver.resolve([dtab], ["svc", "world"]));
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const share = (counts.get("/#/io.l5d.k8s/default/http/world") ?? 0) / 4000;
    assert.ok(share > 0.7 && share < 0.8, `default share ${share}`);
  });

  it("resolves /$/inet/<host>/<port> to a fixed address", () => {
    const dtab = parseDtab("/svc/ext => /$/inet/127.0.0.1/8080;");
    const r = resolver.resolve([dtab], ["svc", "ext"]);
    assert.equal(r.kind, "bound");
    assert.deepEqual(r.kind === "bound" && r.dest, { kind: "inet", id: "/$/inet/127.0.0.1/8080", host: "127.0.0.1", port: 8080 });
    assert.equal(resolver.resolve([parseDtab("/svc => /$/inet/h/99999")], ["svc", "x"]).kind, "error");
  });

  it("reports a missing route with the name and the reason", () => {
    assert.match(bound(resolver.resolve([base], ["svc", "nope"])), /^neg: service default\/nope not found/);
    assert.match(bound(resolver.resolve([base], ["other", "x"])), /^neg: no dentry matches \/other\/x/);
  });

  it("stops delegation loops and exponential dtabs instead of hanging", () => {
    const loop = parseDtab("/a => /b; /b => /a;");
    assert.match(bound(resolver.resolve([loop], ["a"])), /^error: delegation deeper than/);
    const blowup = parseDtab(
      Array.from({ length: 30 }, (_, i) => `/l${i} => /l${i + 1} | /l${i + 1} | /l${i + 1}`).join(";"),
    );
    const started = Date.now();
    assert.match(bound(resolver.resolve([blowup], ["l0"])), /^error: resolution of .* exceeded \d+ steps/);
    assert.ok(Date.now() - started < 1000);
  });

  it("treats an explicit ! as a failure, not a fall-through", () => {
    const dtab = parseDtab("/svc => /#/io.l5d.k8s/default/http; /svc => !;");
    assert.match(bound(resolver.resolve([dtab], ["svc", "world"])), /^fail: delegated to !/);
  });
});

describe("l5d-dtab header cache", () => {
  it("parses once per distinct header and keeps errors", () => {
    const cache = new DtabHeaderCache(2);
    const a = cache.parse("/svc=>/x");
    assert.equal(cache.parse("/svc=>/x"), a);
    const bad = cache.parse("/svc=>");
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.error : "", /^bad l5d-dtab header: expected a path/);
    cache.parse("/c=>/d");
    assert.notEqual(cache.parse("/svc=>/x"), a, "least recently used entry was evicted");
  });

  it("joins repeated headers in order", () => {
    const r = new DtabHeaderCache().parse(["/a=>/b", "/c=>/d"]);
    assert.ok(r.ok);
    assert.equal(r.ok && r.dtab.length, 2);
  });
});
