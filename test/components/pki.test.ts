// The mesh PKI: which certificates exist, who signs what, what every proxy
// trusts, how a config change re-issues the mesh key, and that keys stay secret.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { MeshPki, PkiArgsError, type MeshPkiArgs } from "../../components/pki";
import { plainMatches, run, valueOf, type Registration } from "./support/harness";

const base: MeshPkiArgs = {
  identity: "mesh.default.zt-mesh.local",
  caGenerations: ["g1"],
  caValidityHours: 87600,
  certValidityHours: 720,
  certEarlyRenewalHours: 168,
  certRotation: "initial",
};

const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

function one(regs: readonly Registration[], type: string, name: string): Registration {
  const found = regs.filter((r) => r.type === `tls:index/${type}` && r.name === name);
  assert.equal(found.length, 1, `one ${type} named ${name}`);
  return found[0] as Registration;
}

const KEY = "privateKey:PrivateKey";
const SELF_SIGNED = "selfSignedCert:SelfSignedCert";
const CSR = "certRequest:CertRequest";
const SIGNED = "locallySignedCert:LocallySignedCert";

async function pki(args: Partial<MeshPkiArgs> = {}) {
  return run(() => new MeshPki("pki", { ...base, ...args }));
}

describe("MeshPki", () => {
  it("creates a CA per generation and one CA-signed mesh certificate, all children of the component", async () => {
    const { registrations } = await pki({ caGenerations: ["g1", "g2"], caSigner: "g1" });
    const component = registrations.find((r) => r.type === "zt-mesh:index:MeshPki");
    assert.ok(component);
    const children = registrations.filter((r) => r.custom);
    assert.deepEqual(children.map((r) => `${r.type.split("/")[1]} ${r.name}`).sort(), [
      `${CSR} pki-mesh-csr`,
      `${SIGNED} pki-mesh-cert`,
      `${KEY} pki-ca-g1-key`,
      `${KEY} pki-ca-g2-key`,
      `${KEY} pki-mesh-key`,
      `${SELF_SIGNED} pki-ca-g1-cert`,
      `${SELF_SIGNED} pki-ca-g2-cert`,
      "randomId:RandomId pki-mesh-rotation",
    ].sort());
    for (const child of children) assert.equal(child.parent, component.urn, `${child.name} is parented to the component`);
  });

  it("uses ECDSA P-256 keys", async () => {
    const { registrations } = await pki();
    for (const name of ["pki-ca-g1-key", "pki-mesh-key"]) {
      assert.deepEqual(one(registrations, KEY, name).inputs, { algorithm: "ECDSA", ecdsaCurve: "P256" });
    }
  });

  it("makes each CA a self-signed CA that can sign certificates", async () => {
    const { registrations } = await pki({ caValidityHours: 1000, certValidityHours: 100, certEarlyRenewalHours: 10 });
    const ca = one(registrations, SELF_SIGNED, "pki-ca-g1-cert").inputs;
    assert.equal(ca["isCaCertificate"], true);
    assert.ok((ca["allowedUses"] as string[]).includes("cert_signing"));
    assert.equal(ca["validityPeriodHours"], 1000);
    assert.equal(ca["privateKeyPem"], keyPem(registrations, "pki-ca-g1-key"));
  });

  it("issues the mesh certificate for the mesh identity, for both server and client auth, with the configured lifetime", async () => {
    const { registrations, result } = await pki({ certValidityHours: 24, certEarlyRenewalHours: 8 });
    const csr = one(registrations, CSR, "pki-mesh-csr").inputs;
    assert.deepEqual(csr["dnsNames"], ["mesh.default.zt-mesh.local"]);
    assert.equal(csr["privateKeyPem"], keyPem(registrations, "pki-mesh-key"));
    const cert = one(registrations, SIGNED, "pki-mesh-cert").inputs;
    const uses = cert["allowedUses"] as string[];
    assert.ok(uses.includes("server_auth") && uses.includes("client_auth"), `allowedUses ${uses.join(",")}`);
    assert.equal(cert["validityPeriodHours"], 24);
    assert.equal(cert["earlyRenewalHours"], 8);
    assert.match(await valueOf(result.certificateExpiry), /^2030-01-02T00:00:00Z$/);
  });

  it("trusts every CA generation, and signs with the one caSigner names", async () => {
    for (const signer of ["g1", "g2"]) {
      const { registrations, result } = await pki({ caGenerations: ["g1", "g2"], caSigner: signer });
      const bundle = await valueOf(result.caBundlePem);
      const pems = ["pki-ca-g1-cert", "pki-ca-g2-cert"].map((name) => certPem(registrations, name));
      assert.equal(bundle, pems.join(""), "the bundle is every CA certificate, in generation order");
      const cert = one(registrations, SIGNED, "pki-mesh-cert").inputs;
      assert.equal(cert["caCertPem"], certPem(registrations, `pki-ca-${signer}-cert`));
      assert.equal(cert["caPrivateKeyPem"], keyPem(registrations, `pki-ca-${signer}-key`));
      assert.equal(result.caSigner, signer);
    }
  });

  it("signs with the only generation when there is one", async () => {
    const { registrations, result } = await pki();
    assert.equal(result.caSigner, "g1");
    assert.equal(one(registrations, SIGNED, "pki-mesh-cert").inputs["caCertPem"], certPem(registrations, "pki-ca-g1-cert"));
  });

  it("will not guess the signer while two generations are trusted: the switch is its own step", () => {
    assert.throws(() => new MeshPki("mid-rotation", { ...base, caGenerations: ["g1", "g2"] }), /caSigner: must name/);
  });

  it("refuses a signer that is not a trusted generation", () => {
    assert.throws(() => new MeshPki("bad", { ...base, caSigner: "g2" }), PkiArgsError);
  });

  describe("rotation", () => {
    async function triggers(certRotation: string, more: Partial<MeshPkiArgs> = {}) {
      const { registrations } = await pki({ certRotation, ...more });
      const random = registrations.find((r) => r.type === "random:index/randomId:RandomId");
      assert.ok(random);
      return {
        keepers: random.inputs["keepers"],
        meshKey: one(registrations, KEY, "pki-mesh-key").replacementTrigger,
        csr: one(registrations, CSR, "pki-mesh-csr").replacementTrigger,
        cert: one(registrations, SIGNED, "pki-mesh-cert").replacementTrigger,
        caKey: one(registrations, KEY, "pki-ca-g1-key").replacementTrigger,
        caCert: one(registrations, SELF_SIGNED, "pki-ca-g1-cert").replacementTrigger,
      };
    }

    it("keys the RandomId on certRotation and makes its value the replacement trigger of the mesh key, CSR and certificate", async () => {
      const t = await triggers("initial");
      assert.deepEqual(t.keepers, { certRotation: "initial" });
      assert.equal(typeof t.meshKey, "string");
      assert.ok((t.meshKey as string).length > 0);
      assert.equal(t.csr, t.meshKey);
      assert.equal(t.cert, t.meshKey);
    });

    it("changing certRotation changes the trigger, so the next pulumi up replaces all three", async () => {
      const before = await triggers("initial");
      const after = await triggers("2030-01-rotation");
      assert.notEqual(after.meshKey, before.meshKey);
      assert.notEqual(after.csr, before.csr);
      assert.notEqual(after.cert, before.cert);
    });

    it("an unchanged certRotation keeps the trigger, so nothing is re-issued by accident", async () => {
      const a = await triggers("initial");
      const b = await triggers("initial", { certValidityHours: 700 });
      assert.equal(a.meshKey, b.meshKey);
    });

    it("leaves the CAs alone: rotating the mesh certificate never re-keys a CA", async () => {
      const t = await triggers("other");
      assert.equal(t.caKey, undefined);
      assert.equal(t.caCert, undefined);
    });
  });

  describe("secrets", () => {
    it("exposes the mesh private key only as a secret", async () => {
      const { result } = await pki();
      assert.equal(await pulumi.isSecret(result.privateKeyPem), true);
      assert.match(await valueOf(result.privateKeyPem), /-----BEGIN PRIVATE KEY-----/);
    });

    it("keeps the public material public", async () => {
      const { result } = await pki();
      assert.equal(await pulumi.isSecret(result.caBundlePem), false);
      assert.equal(await pulumi.isSecret(result.certificatePem), false);
      assert.equal(await pulumi.isSecret(result.certificateExpiry), false);
    });

    it("never sends a private key to the engine outside a secret, in any input or component output", async () => {
      const { registrations } = await pki({ caGenerations: ["g1", "g2"], caSigner: "g2" });
      for (const r of registrations) {
        assert.deepEqual(plainMatches(r.raw, PRIVATE_KEY), [], `plain private key in the inputs of ${r.name}`);
        assert.deepEqual(plainMatches(r.outputs ?? {}, PRIVATE_KEY), [], `plain private key in the outputs of ${r.name}`);
      }
    });
  });
});

/** An output property of the resource named `name`, as its provider returned it. */
function outputOf(regs: readonly Registration[], name: string, property: string): unknown {
  const found = regs.find((r) => r.custom && r.name === name);
  assert.ok(found, `a resource named ${name}`);
  return found.state[property];
}

const keyPem = (regs: readonly Registration[], name: string) => outputOf(regs, name, "privateKeyPem");
const certPem = (regs: readonly Registration[], name: string) => outputOf(regs, name, "certPem");
