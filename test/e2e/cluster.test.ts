// The mesh for real: a Kubernetes control plane and three emulated nodes on this
// machine, the real Pulumi engine deploying the program, and the classic
// walkthrough on what it deployed. This is `npm run demo`'s test twin, plus the
// engine's own promises: preview plans, a second up changes nothing, secrets
// are encrypted in state, rotation re-issues the certificate without failing
// requests, destroy removes everything.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { walkthroughChecks } from "./checks";
import { waitFor } from "../support/wait";
import { type Cluster, IN_CLUSTER, clusterUp } from "./cluster";
import { inHost } from "./hosts";
import { type PulumiEngine, pulumiBinaries, pulumiStack, stateFile } from "./pulumi";
import { findMesh, runWalkthrough, waitForMesh } from "./walkthrough";

const run = promisify(execFile);
const REPO = join(__dirname, "..", "..");
const CHECK_CLI = join(REPO, "cli", "zt-mesh.ts");
const progress = (s: string): void => {
  if (process.env.ZTMESH_VERBOSE === "1") process.stderr.write(`  ${s}\n`);
};

let cluster: Cluster;
let engine: PulumiEngine;

before(async () => {
  const pulumiBin = await pulumiBinaries(progress);
  cluster = await clusterUp(["a", "b", "c"], progress);
  engine = await pulumiStack(pulumiBin, cluster.workDir, cluster.controlPlane.adminKubeconfig, "local", "dev");
});

after(async () => {
  await cluster?.down();
});

describe("pulumi on the local cluster", { concurrency: false }, () => {
  it("preview plans the mesh's resources without creating anything", async () => {
    const out = await engine.pulumi(["preview", "--diff"]);
    for (const type of ["kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap", "tls:index/locallySignedCert:LocallySignedCert", "random:index/randomId:RandomId"]) {
      assert.match(out, new RegExp(`\\+ ${type.replace(/[/.:]/g, (c) => `\\${c}`)}`), `preview plans a ${type}`);
    }
    const ds = await cluster.kubeconfig.makeApiClient(AppsV1Api).listDaemonSetForAllNamespaces();
    assert.equal(ds.items.length, 0, "preview created nothing");
  });

  it("up deploys a mesh that passes the walkthrough", async () => {
    await engine.pulumi(["up", "--yes", "--skip-preview"]);
    await waitForMesh(cluster.kubeconfig, cluster.hosts.length, "default");
    const result = await runWalkthrough(cluster.kubeconfig, cluster.hosts, cluster.workDir, "default", progress);
    for (const check of walkthroughChecks(result)) assert.ok(check.ok, `${check.name}: ${check.detail}`);
  });

  it("a second up changes nothing", async () => {
    await engine.pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
  });

  it("keeps private keys encrypted in the state; only --show-secrets reveals them", async () => {
    const state = await stateFile(engine);
    assert.doesNotMatch(state, /PRIVATE KEY/, "no private key in clear in the state file");
    // Pulumi marks a secret value with this signature key and stores only its ciphertext.
    assert.match(state, /"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext":"v1:/, "secrets are stored encrypted");
    const plain = await engine.outputs(false);
    assert.doesNotMatch(JSON.stringify(plain), /PRIVATE KEY/);
    assert.equal(plain["meshClientKey"], "[secret]");
    const revealed = await engine.outputs(true);
    assert.match(String(revealed["meshClientKey"]), /-----BEGIN (EC )?PRIVATE KEY-----/);
  });

  it("rotation re-issues the mesh certificate, the proxies pick it up, and requests during the update do not fail", async () => {
    const before = (await findMesh(cluster.kubeconfig)).tls.cert;
    const a = cluster.hosts[0]!;
    const mesh = await findMesh(cluster.kubeconfig);
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const argv = inHost(a, ["curl", "-sS", "--max-time", "10", "-x", `http://${a.ip}:${mesh.config.outgoing.port}`, "http://hello"]);
        try {
          const { stdout } = await run(argv[0]!, argv.slice(1));
          if (stdout.trim() === "Hello world") ok++;
          else failures.push(stdout.trim());
        } catch (err) {
          failures.push((err as Error).message.split("\n")[0]!);
        }
      }
    })();
    await engine.pulumi(["config", "set", "zt-mesh:certRotation", "r2"]);
    await engine.pulumi(["up", "--yes", "--skip-preview"]);
    let after = before;
    await waitFor("the re-issued certificate in the Secret", async () => {
      after = (await findMesh(cluster.kubeconfig)).tls.cert;
      return after !== before;
    }, IN_CLUSTER);
    // Every proxy reports the reload in its metrics once its kubelet-swapped files change.
    for (const h of cluster.hosts) {
      await waitFor(`proxy on ${h.name} to reload`, async () => {
        const { stdout } = await run("curl", ["-s", `http://${h.ip}:${mesh.config.admin.port}/metrics`]);
        return /mesh_reloads_total\{what="tls",result="applied"\} [1-9]/.test(stdout);
      }, IN_CLUSTER);
    }
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    await load;
    assert.deepEqual(failures, [], `requests failed during the rotation (${ok} succeeded)`);
    assert.ok(ok > 5, `only ${ok} requests ran during the rotation`);
    const result = await runWalkthrough(cluster.kubeconfig, cluster.hosts, cluster.workDir, "default", progress);
    assert.equal(result.hello.trim(), "Hello world", "the mesh works on the new certificate");
  });

  it("zt-mesh check passes on the deployed mesh, and names a node left without a proxy", async () => {
    const check = (): Promise<{ code: number; out: string }> =>
      run(process.execPath, ["--import", "tsx", CHECK_CLI, "check", "--kubeconfig", cluster.controlPlane.adminKubeconfig], { cwd: REPO }).then(
        ({ stdout }) => ({ code: 0, out: stdout }),
        (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, out: err.stdout ?? "" }),
      );
    const healthy = await check();
    assert.equal(healthy.code, 0, healthy.out);
    assert.doesNotMatch(healthy.out, /^✗/m);
    assert.match(healthy.out, /^✓ every schedulable node runs a ready proxy: 3 nodes, 3 ready proxies$/m);
    assert.match(healthy.out, /^✓ the proxies' RBAC is no wider than they need/m);

    // A node joins with no kubelet behind it: the DaemonSet's pod for it never runs.
    const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
    await core.createNode({ body: { metadata: { name: "ghost" } } });
    try {
      const broken = await check();
      assert.equal(broken.code, 1, broken.out);
      assert.match(broken.out, /^✗ every schedulable node runs a ready proxy: no ready proxy on ghost\n {4}hint: /m);
    } finally {
      await core.deleteNode({ name: "ghost" });
    }
  });

  it("destroy removes everything it created", async () => {
    await engine.pulumi(["destroy", "--yes", "--skip-preview"]);
    const apps = cluster.kubeconfig.makeApiClient(AppsV1Api);
    const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
    assert.equal((await apps.listDaemonSetForAllNamespaces()).items.length, 0);
    assert.equal((await apps.listDeploymentForAllNamespaces()).items.length, 0);
    const services = (await core.listServiceForAllNamespaces()).items.map((s) => s.metadata!.name);
    assert.deepEqual(services, ["kubernetes"]);
    const secrets = (await core.listSecretForAllNamespaces()).items.filter((s) => s.metadata?.labels?.["app.kubernetes.io/name"] !== undefined);
    assert.deepEqual(secrets.map((s) => s.metadata!.name), []);
  });
});
