// The identity service as a proxy and an attacker meet it: a CSR and a
// projected token in, a certificate naming the pod's node out, and every other
// request refused with its reason, in the body, the log and the metrics.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { request } from "node:https";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ECDSA_P256, x509 } from "../../proxy/src/util/x509";
import { FakeKubeApi, PODS, meshPod, podToken } from "../support/fake-kube-api";
import { AUDIENCE, IdentityFixture, PROXY_SA, TRUST_DOMAIN } from "../support/identity";
import { MESH_LABELS } from "../support/mesh";
import { freePort, httpGet } from "../support/net";
import { waitFor } from "../support/wait";
import { stringify } from "yaml";

let api: FakeKubeApi;
let identity: IdentityFixture;
let dir: string;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, string>;
}

/** Where to post: a service's address and the anchor its certificate chains to. */
interface Target {
  readonly url: string;
  readonly anchor: { readonly cert: string };
}

function post(f: Target, body: string, token: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${f.url}/v1/certificates`,
      {
        method: "POST",
        ca: f.anchor.cert,
        headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Record<string, string> }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A CSR as an attacker might write it: asking for names of its own. */
async function csr(subject = "CN=admin, O=system:masters"): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: { privateKey: privateKey.toCryptoKey(ECDSA_P256, false, ["sign"]), publicKey: publicKey.toCryptoKey(ECDSA_P256, true, ["verify"]) },
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "kubernetes.default.svc" }, { type: "url", value: `spiffe://${TRUST_DOMAIN}/ns/default/node/b` }])],
  });
  return req.toString("pem");
}

async function refusals(reason: string): Promise<number> {
  const m = await identity.metrics.refused.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

before(async () => {
  api = new FakeKubeApi();
  await api.start();
  dir = await mkdtemp(join(tmpdir(), "zt-mesh-identity-test-"));
  await api.writeKubeconfig(join(dir, "kubeconfig"));
  identity = await IdentityFixture.start(api, join(dir, "kubeconfig"), { maxLifetimeMs: 3600_000, limits: { perSourceBurst: 1000, perSourcePerSecond: 1000 } });
  api.upsert(PODS, meshPod("default", "l5d-a", "a", "127.0.0.2", MESH_LABELS));
  api.upsert(PODS, { ...meshPod("default", "l5d-pending", "a", "127.0.0.5", MESH_LABELS), status: { phase: "Pending" } });
  api.upsert(PODS, meshPod("default", "app-a", "a", "127.0.0.6", { app: "hello" }));
  api.tokens.set("proxy-a", podToken("default", PROXY_SA, "l5d-a", "a"));
});

after(async () => {
  await identity?.close();
  await api?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("the identity service", () => {
  it("signs a mesh proxy's CSR with its pod's node as the only name, chained to the anchor through the issuer", async () => {
    const reviews = api.reviewedAudiences.length;
    const t0 = Date.now();
    const answer = await post(identity, JSON.stringify({ csr: await csr(), lifetimeMs: 600_000 }), "proxy-a");
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const leaf = new X509Certificate(answer.body.certificate!);
    const issuer = new X509Certificate(answer.body.chain!);
    const anchor = new X509Certificate(identity.anchor.cert);
    assert.equal(leaf.subjectAltName, `URI:spiffe://${TRUST_DOMAIN}/ns/default/node/a`, "the CSR's own names are not copied");
    assert.equal(answer.body.identity, `spiffe://${TRUST_DOMAIN}/ns/default/node/a`);
    assert.doesNotMatch(leaf.subject, /admin|masters/);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.verify(issuer.publicKey) && issuer.verify(anchor.publicKey), "leaf -> issuer -> anchor");
    const life = leaf.validToDate.getTime() - t0;
    assert.ok(life <= 600_000 + 1000 && life > 590_000, `granted what was asked for: ${life} ms`);
    assert.deepEqual(api.reviewedAudiences.slice(reviews), [[AUDIENCE]], "the TokenReview asked for the service's audience");
  });

  it("never grants longer than its configured maximum", async () => {
    const answer = await post(identity, JSON.stringify({ csr: await csr(), lifetimeMs: 30 * 86400_000 }), "proxy-a");
    assert.equal(answer.status, 200);
    const life = new X509Certificate(answer.body.certificate!).validToDate.getTime() - Date.now();
    assert.ok(life <= 3600_000, `${life} ms`);
  });

  const refusedCases: { name: string; token?: string; info?: Parameters<typeof api.tokens.set>[1]; body?: () => Promise<string>; status: number; reason: string }[] = [
    { name: "a request without a token", status: 401, reason: "no_token" },
    { name: "a token the API server does not know", token: "forged", status: 401, reason: "token_not_authenticated" },
    { name: "a token of another ServiceAccount", token: "default-sa", info: podToken("default", "default", "l5d-a", "a"), status: 403, reason: "wrong_service_account" },
    { name: "a mesh proxy's token for another audience", token: "other-audience", info: podToken("default", PROXY_SA, "l5d-a", "a", ["https://kubernetes.default.svc"]), status: 401, reason: "token_not_authenticated" },
    { name: "a token not bound to a pod", token: "unbound", info: { username: `system:serviceaccount:default:${PROXY_SA}`, audiences: [AUDIENCE] }, status: 403, reason: "not_bound_to_pod" },
    { name: "a token bound to a pod that is not Running", token: "pending", info: podToken("default", PROXY_SA, "l5d-pending", "a"), status: 403, reason: "pod_not_running" },
    { name: "a token whose node is not the pod's node", token: "other-node", info: podToken("default", PROXY_SA, "l5d-a", "b"), status: 403, reason: "wrong_node" },
    { name: "a token bound to a pod that is not a mesh proxy", token: "app", info: podToken("default", PROXY_SA, "app-a", "a"), status: 403, reason: "not_a_mesh_proxy" },
    { name: "a token bound to a pod that is gone", token: "gone", info: podToken("default", PROXY_SA, "l5d-gone", "a"), status: 403, reason: "pod_not_found" },
    {
      name: "a CSR whose signature does not verify",
      token: "proxy-a",
      body: async () => {
        const der = Buffer.from((await csr()).replace(/-----[^-]+-----|\s/g, ""), "base64");
        der[der.length - 5]! ^= 0xff;
        return JSON.stringify({ csr: `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n` });
      },
      status: 400,
      reason: "bad_csr_signature",
    },
    { name: "a body that is not a CSR", token: "proxy-a", body: async () => JSON.stringify({ csr: "hello" }), status: 400, reason: "bad_csr" },
    { name: "a body that is not JSON", token: "proxy-a", body: async () => "csr=1", status: 400, reason: "bad_request" },
    { name: "a lifetime under a second", token: "proxy-a", body: async () => JSON.stringify({ csr: await csr(), lifetimeMs: 10 }), status: 400, reason: "bad_lifetime" },
  ];
  for (const c of refusedCases) {
    it(`refuses ${c.name}: ${c.status} ${c.reason}, logged and counted`, async () => {
      if (c.token !== undefined && c.info !== undefined) api.tokens.set(c.token, c.info);
      const before = await refusals(c.reason);
      const answer = await post(identity, c.body === undefined ? JSON.stringify({ csr: await csr() }) : await c.body(), c.token);
      assert.equal(answer.status, c.status, JSON.stringify(answer.body));
      assert.equal(answer.body.error, c.reason);
      assert.ok((answer.body.message ?? "").length > 10, "a reason a person can read");
      assert.equal(answer.body.certificate, undefined);
      assert.equal(await refusals(c.reason), before + 1);
      const logged = identity.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "request_refused" && l.reason === c.reason);
      assert.ok(logged.length > 0, "a JSON log line with the reason");
    });
  }

  it("refuses an oversized request with 413, before asking the API server", async () => {
    const reviews = api.reviewedAudiences.length;
    const answer = await post(identity, JSON.stringify({ csr: "x".repeat(20_000) }), "proxy-a");
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error, "too_large");
    assert.equal(api.reviewedAudiences.length, reviews);
  });

  it("rate-limits each source address with 429 and Retry-After, and the others keep being served", async () => {
    const limited = await IdentityFixture.start(api, join(dir, "kubeconfig"), { limits: { perSourceBurst: 3, perSourcePerSecond: 0.01 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await post(limited, JSON.stringify({ csr: await csr() }), "proxy-a")).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const again = await post(limited, JSON.stringify({ csr: await csr() }), "proxy-a");
      assert.equal(again.headers["retry-after"], "1");
      assert.equal(again.body.error, "rate_limited");
    } finally {
      await limited.close();
    }
  });

  it("caps all sources together", async () => {
    const limited = await IdentityFixture.start(api, join(dir, "kubeconfig"), { limits: { globalBurst: 2, globalPerSecond: 0.01 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(limited, JSON.stringify({ csr: await csr() }), "proxy-a")).status);
      assert.deepEqual(statuses, [200, 200, 429]);
    } finally {
      await limited.close();
    }
  });

  it("is ready with an issuer in date, and serves its metrics", async () => {
    const ready = await httpGet("127.0.0.1", identity.config.admin.port, "/ready");
    assert.equal(ready.status, 200);
    const metrics = await httpGet("127.0.0.1", identity.config.admin.port, "/metrics");
    assert.match(metrics.body, /identity_certificates_issued_total [1-9]/);
    assert.match(metrics.body, /identity_requests_refused_total\{reason="wrong_service_account"\} 1/);
  });

  it("runs as its own process from the build (node dist/identity-main.js --config), signs, and stops on SIGTERM", async () => {
    const config = { ...identity.config, listen: { ...identity.config.listen, port: await freePort(["127.0.0.1"]) }, admin: { ...identity.config.admin, port: await freePort(["127.0.0.1"]) } };
    const configPath = join(dir, "identity.yaml");
    await writeFile(configPath, stringify(config));
    const proc = spawn(process.execPath, [join(__dirname, "..", "..", "proxy", "dist", "identity-main.js"), "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    proc.stdout.on("data", (c: Buffer) => (output += c.toString()));
    proc.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    try {
      await waitFor("the identity service process to be ready", async () => (await httpGet("127.0.0.1", config.admin.port, "/ready").catch(() => undefined))?.status === 200, {
        detail: () => `; its output:\n${output.slice(-2000)}`,
      });
      const answer = await post({ url: `https://localhost:${config.listen.port}`, anchor: identity.anchor }, JSON.stringify({ csr: await csr() }), "proxy-a");
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(new X509Certificate(answer.body.certificate!).subjectAltName, `URI:spiffe://${TRUST_DOMAIN}/ns/default/node/a`);
    } finally {
      proc.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output.slice(-2000));
    assert.match(output, /"event":"certificate_issued"/);
  });
});
