import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseConfig, parseConfigText, renderConfig } from "@zt-mesh/proxy-config";

const problems = (fn: () => unknown): readonly string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail("expected a ConfigError");
};

describe("proxy config", () => {
  it("fills every key with the documented default", () => {
    const c = parseConfig({});
    assert.equal(c.outgoing.port, 4140);
    assert.equal(c.incoming.port, 4141);
    assert.equal(c.admin.port, 9990);
    assert.equal(c.outgoing.dtab, "/svc => /#/io.l5d.k8s/default/http;");
    assert.deepEqual(c.outgoing.dtabOverrideFrom, ["127.0.0.0/8", "::1/128"]);
    assert.equal(c.tls.caBundle, "/etc/zt-mesh/tls/ca-bundle.crt");
  });

  it("names each bad field and says what is wrong", () => {
    const p = problems(() =>
      parseConfig({ outgoing: { port: 70000, dtab: "/svc => " }, limits: { maxHops: 1 }, tls: { identity: "Not A Name" } }),
    );
    assert.ok(p.some((x) => x.startsWith("outgoing.port: ")));
    assert.ok(p.some((x) => x.startsWith("outgoing.dtab: bad dtab: expected a path")));
    assert.ok(p.some((x) => x.startsWith("limits.maxHops: ")));
    assert.ok(p.some((x) => x.startsWith("tls.identity: must be a lower-case DNS name")));
  });

  it("rejects unknown keys, so a typo is not silently ignored", () => {
    assert.deepEqual(problems(() => parseConfig({ outgoing: { prot: 1 } })), ["outgoing.prot: unknown key"]);
    assert.deepEqual(problems(() => parseConfig({ bogus: true })), ["bogus: unknown key"]);
  });

  it("rejects invalid CIDRs in dtabOverrideFrom", () => {
    assert.match(problems(() => parseConfig({ outgoing: { dtabOverrideFrom: ["10.0.0.0/33"] } }))[0]!, /^outgoing\.dtabOverrideFrom\.0: /);
  });

  it("rejects text that is not YAML with a clear message", () => {
    assert.throws(() => parseConfigText("outgoing: [unclosed", "cfg.yaml"), /invalid cfg\.yaml: not YAML/);
  });

  it("renders YAML that parses back to the same config", () => {
    const text = renderConfig({ outgoing: { dtab: "/svc => /#/io.l5d.k8s/prod/http;" }, tls: { identity: "mesh.prod.local" } });
    assert.deepEqual(parseConfigText(text), parseConfig({ outgoing: { dtab: "/svc => /#/io.l5d.k8s/prod/http;" }, tls: { identity: "mesh.prod.local" } }));
  });

  it("refuses to render a config the proxy would reject", () => {
    assert.throws(() => renderConfig({ incoming: { dtab: "nonsense" } }), /incoming\.dtab: bad dtab/);
  });
});
