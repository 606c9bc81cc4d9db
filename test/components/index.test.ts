// index.ts itself, run as `pulumi up` would run it on the dev stack: config in,
// outputs out, and a Kubernetes provider that updates Secrets in place.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { plainMatches, run, valueOf, type Registration } from "./support/harness";
import { stackConfig } from "./support/stack-config";

let outputs: Record<string, unknown>;
let regs: readonly Registration[];

before(async () => {
  pulumi.runtime.setAllConfig(stackConfig("dev"));
  // Loaded only now, after the config is in place, as the Pulumi runtime does.
  const deployed = await run(() => require("../../index") as Record<string, unknown>, "dev");
  outputs = deployed.result;
  regs = deployed.registrations;
});

describe("index.ts", () => {
  it("exports the namespace, the CA certificate, the mesh certificate's expiry, the walkthrough and the client credentials", () => {
    const exported = Object.keys(outputs).filter((k) => k !== "default" && pulumi.Output.isInstance(outputs[k]));
    assert.deepEqual(exported.sort(), [
      "caCertificate",
      "meshCertificateExpiry",
      "meshClientCertificate",
      "meshClientKey",
      "namespace",
      "walkthrough",
    ]);
  });

  it("exports the mesh private key only as a secret", async () => {
    const key = outputs["meshClientKey"] as pulumi.Output<string>;
    assert.equal(await pulumi.isSecret(key), true);
    assert.match(await valueOf(key), /PRIVATE KEY/);
  });

  it("exports the rest in plain text, with no private key among them", async () => {
    for (const name of ["caCertificate", "meshCertificateExpiry", "meshClientCertificate", "namespace", "walkthrough"]) {
      const output = outputs[name] as pulumi.Output<string>;
      assert.equal(await pulumi.isSecret(output), false, name);
      assert.doesNotMatch(await valueOf(output), /PRIVATE KEY/, name);
    }
    assert.equal(await valueOf(outputs["namespace"] as pulumi.Output<string>), "default");
    assert.match(await valueOf(outputs["walkthrough"] as pulumi.Output<string>), /curl -s http:\/\/hello/);
  });

  it("deploys through a Kubernetes provider that updates Secrets and ConfigMaps in place", () => {
    const providers = regs.filter((r) => r.type === "pulumi:providers:kubernetes");
    assert.equal(providers.length, 1);
    const provider = providers[0] as Registration;
    // Provider config reaches the engine as strings.
    assert.equal(String(provider.inputs["enableSecretMutable"]), "true");
    assert.equal(String(provider.inputs["enableConfigMapMutable"]), "true");
    assert.equal(provider.inputs["context"], undefined, "dev uses the current kubeconfig context");
    const kube = regs.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
    assert.ok(kube.length > 0);
    for (const r of kube) assert.ok(r.provider.startsWith(`${provider.urn}::`), `${r.type} ${r.name} uses it`);
  });

  it("registers no private key outside a secret", () => {
    for (const r of regs) assert.deepEqual(plainMatches(r.raw, /PRIVATE KEY/), [], `${r.type} ${r.name}`);
  });
});
