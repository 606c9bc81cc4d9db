// Stack config: what Pulumi.yaml declares is what the program reads, each
// environment file says only valid things, and a bad value fails naming its key.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PROJECT, SettingsError, loadSettings, type ConfigSource, type Settings } from "../../components/settings";
import { REPO, projectFile, sourceOf, stackFile, stackSource } from "./support/stack-config";

const proxyVersion = (JSON.parse(readFileSync(join(REPO, "proxy", "package.json"), "utf8")) as { version: string }).version;

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function failsNaming(overrides: Record<string, unknown>, key: string, detail?: RegExp): void {
  assert.throws(
    () => loadSettings(stackSource("dev", overrides)),
    (err: unknown) => {
      assert.ok(err instanceof SettingsError, `expected a SettingsError, got ${String(err)}`);
      assert.equal(err.key, `${PROJECT}:${key}`);
      assert.match(err.message, new RegExp(`${PROJECT}:${key}`));
      if (detail) assert.match(err.message, detail);
      return true;
    },
  );
}

describe("Pulumi.yaml", () => {
  const project = projectFile();

  it("is a nodejs project named zt-mesh", () => {
    assert.equal(project.name, PROJECT);
    assert.deepEqual(project.runtime, { name: "nodejs", options: { typescript: true } });
  });

  it("declares exactly the keys the program reads", () => {
    const read = new Set<string>();
    const recording: ConfigSource = { get: (key) => (read.add(key), undefined) };
    loadSettings(recording);
    assert.deepEqual([...read].sort(), Object.keys(project.config).sort());
  });

  it("is where the program's defaults come from: no config at all reads as Pulumi.yaml's defaults", () => {
    const defaults = sourceOf(Object.fromEntries(Object.entries(project.config).map(([k, d]) => [k, d.default])));
    assert.deepEqual(loadSettings({ get: () => undefined }), loadSettings(defaults));
  });

  for (const [key, declared] of Object.entries(projectFile().config)) {
    it(`declares ${key} with a type, a description and a default of that type`, () => {
      assert.ok(["string", "integer", "boolean", "array"].includes(declared.type), `type ${declared.type}`);
      assert.ok(declared.description.length > 10, "a description that says something");
      assert.equal(typeOf(declared.default), declared.type);
      if (declared.type === "array") assert.deepEqual(declared.items, { type: "string" });
    });
  }
});

describe("stack files", () => {
  for (const stack of ["dev", "prod"]) {
    it(`Pulumi.${stack}.yaml sets only declared keys, each with a value of the declared type`, () => {
      const declared = projectFile().config;
      for (const [fullKey, value] of Object.entries(stackFile(stack))) {
        const [namespace, key] = fullKey.split(":");
        assert.equal(namespace, PROJECT, `${fullKey} is not a ${PROJECT} key`);
        const decl = declared[key as string];
        assert.ok(decl, `${fullKey} is not declared in Pulumi.yaml`);
        assert.equal(typeOf(value), decl.type, `${fullKey}`);
        assert.notDeepEqual(value, decl.default, `${fullKey} repeats the default; stack files say only what differs`);
      }
    });

    it(`Pulumi.${stack}.yaml loads`, () => {
      assert.doesNotThrow(() => loadSettings(stackSource(stack)));
    });
  }

  it("dev and prod differ where environments differ", () => {
    const dev = loadSettings(stackSource("dev"));
    const prod = loadSettings(stackSource("prod"));
    assert.equal(dev.demo.enabled, true);
    assert.equal(prod.demo.enabled, false);
    assert.ok(dev.pki.certValidityHours <= 48, "dev certificates are short-lived");
    assert.ok(prod.pki.certValidityHours >= 24 * 60, "prod certificates last months");
    assert.ok(dev.pki.certEarlyRenewalHours < dev.pki.certValidityHours);
    assert.ok(prod.pki.certEarlyRenewalHours < prod.pki.certValidityHours);
    assert.equal(dev.proxy.resources.limits.cpu, undefined);
    assert.ok(prod.proxy.resources.limits.cpu, "prod limits CPU");
    assert.ok(prod.proxy.resources.limits.memory, "prod limits memory");
    assert.notEqual(dev.proxy.resources.requests.cpu, prod.proxy.resources.requests.cpu);
    assert.equal(prod.service.type, "ClusterIP", "prod keeps admin inside the cluster");
    assert.notEqual(dev.service.type, "ClusterIP");
  });
});

describe("loadSettings", () => {
  it("with no config at all gives the documented defaults", () => {
    const s: Settings = loadSettings(sourceOf({}));
    assert.equal(s.namespace, "default");
    assert.equal(s.createNamespace, false);
    assert.equal(s.proxy.image, `ghcr.io/zt-mesh/proxy:${proxyVersion}`);
    assert.deepEqual(s.proxy.config.args.ports, { outgoing: 4140, incoming: 4141, admin: 9990 });
    assert.equal(s.proxy.config.args.outgoingDtab, "/svc => /#/io.l5d.k8s/default/http;");
    assert.equal(s.proxy.config.args.incomingDtab, "/svc => /#/io.l5d.k8s/default/http;");
    assert.equal(s.pki.identity, "mesh.default.zt-mesh.local");
    assert.deepEqual(s.pki.caGenerations, ["g1"]);
    assert.equal(s.pki.caSigner, "g1");
    assert.equal(s.service.name, "l5d");
    assert.equal(s.demo.enabled, false);
    assert.equal(s.demo.image, "buoyantio/helloworld:0.1.6");
    assert.equal(s.proxy.rolloutMaxUnavailable, 1);
  });

  it("derives identity and dtabs from the namespaces they belong to", () => {
    const s = loadSettings(sourceOf({ namespace: "mesh", demoNamespace: "apps" }));
    assert.equal(s.pki.identity, "mesh.mesh.zt-mesh.local");
    assert.equal(s.proxy.config.args.outgoingDtab, "/svc => /#/io.l5d.k8s/apps/http;");
  });

  it("reads arrays, integers, booleans and percentages the way Pulumi passes them", () => {
    const s = loadSettings(
      sourceOf({
        caGenerations: ["g1", "g2"],
        caSigner: "g1",
        certValidityHours: 480,
        createNamespace: true,
        rolloutMaxUnavailable: "25%",
      }),
    );
    assert.deepEqual(s.pki.caGenerations, ["g1", "g2"]);
    assert.equal(s.pki.caSigner, "g1");
    assert.equal(s.pki.certValidityHours, 480);
    assert.equal(s.createNamespace, true);
    assert.equal(s.proxy.rolloutMaxUnavailable, "25%");
  });

  it("takes an explicit proxy image over the published default", () => {
    assert.equal(loadSettings(sourceOf({ proxyImage: "registry.local/proxy:dev" })).proxy.image, "registry.local/proxy:dev");
  });

  describe("rejects a bad value with a message naming the stack key", () => {
    it("malformed outgoing dtab (the proxy's own validator)", () =>
      failsNaming({ outgoingDtab: "/svc => " }, "outgoingDtab", /outgoing\.dtab: bad dtab/));
    it("malformed incoming dtab", () => failsNaming({ incomingDtab: "svc=>/x" }, "incomingDtab", /incoming\.dtab/));
    it("a CIDR that is not one", () => failsNaming({ dtabOverrideFrom: ["10.0.0.0/99"] }, "dtabOverrideFrom"));
    it("an identity that is not a DNS name", () => failsNaming({ meshIdentity: "Mesh_Identity" }, "meshIdentity", /tls\.identity/));
    it("a port out of range", () => failsNaming({ adminPort: 70000 }, "adminPort", /admin\.port/));
    it("a port that is not a number", () => failsNaming({ outgoingPort: "http" }, "outgoingPort", /whole number/));
    it("two ports the same", () => failsNaming({ incomingPort: 4140 }, "incomingPort", /must differ/));
    it("an unknown log level", () => failsNaming({ logLevel: "verbose" }, "logLevel", /debug, info, warn, error/));
    it("a boolean that is not", () => failsNaming({ demo: "yes" }, "demo", /true or false/));
    it("a list that is not", () => failsNaming({ caGenerations: "g1" }, "caGenerations", /not a list/));
    it("a signer that is not a CA generation", () => failsNaming({ caSigner: "g9" }, "caSigner", /not one of caGenerations/));
    it("no signer named while two CA generations are trusted (mid-rotation)", () =>
      failsNaming({ caGenerations: ["g1", "g2"] }, "caSigner", /must name the signing generation/));
    it("a CA generation listed twice", () => failsNaming({ caGenerations: ["g1", "g1"] }, "caGenerations", /twice/));
    it("renewal not before expiry", () =>
      failsNaming({ certValidityHours: 24, certEarlyRenewalHours: 24 }, "certEarlyRenewalHours", /less than certValidityHours/));
    it("an unknown Service type", () => failsNaming({ serviceType: "External" }, "serviceType"));
    it("a namespace that is not a DNS label", () => failsNaming({ namespace: "Zt_Mesh" }, "namespace"));
    it("a resource quantity Kubernetes would refuse", () => failsNaming({ proxyMemoryLimit: "lots" }, "proxyMemoryLimit"));
    it("a rollout budget of zero", () => failsNaming({ rolloutMaxUnavailable: "0" }, "rolloutMaxUnavailable"));
  });
});
