// `npm run demo`: a newcomer's one command. Builds or reuses the tools, starts
// a local cluster of three emulated nodes, deploys the mesh with `pulumi up`,
// runs the classic walkthrough, prints a summary, and tears everything down,
// also when a step fails or the run is interrupted.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { walkthroughChecks } from "./checks";
import { type Cluster, clusterUp } from "./cluster";
import { pulumiBinaries, pulumiStack } from "./pulumi";
import { runWalkthrough, waitForMesh } from "./walkthrough";

const started = Date.now();
const run = promisify(execFile);
const REPO = join(__dirname, "..", "..");

/** `zt-mesh check` against the local cluster, as an operator would run it. */
function meshHealth(kubeconfig: string): Promise<{ code: number; out: string }> {
  return run(process.execPath, ["--import", "tsx", join(REPO, "cli", "zt-mesh.ts"), "check", "--kubeconfig", kubeconfig], { cwd: REPO }).then(
    ({ stdout }) => ({ code: 0, out: stdout.trimEnd() }),
    (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, out: (err.stdout ?? "").trimEnd() }),
  );
}
const say = (line: string): void => {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
};

async function main(): Promise<number> {
  let cluster: Cluster | undefined;
  let tearingDown = false;
  const teardown = async (): Promise<void> => {
    if (tearingDown || cluster === undefined) return;
    tearingDown = true;
    say("teardown: processes, network namespaces, links, mounts, files");
    await cluster.down();
  };
  // Whatever fails, the machine is left as it was found.
  process.once("uncaughtException", (err) => {
    say(`failed: ${err.message}`);
    void teardown().finally(() => process.exit(1));
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      say(`${sig}: stopping`);
      void teardown().finally(() => process.exit(130));
    });
  }

  try {
    const pulumiBin = await pulumiBinaries(say);
    cluster = await clusterUp(["a", "b", "c"], say);
    const engine = await pulumiStack(pulumiBin, cluster.workDir, cluster.controlPlane.adminKubeconfig, "local", "dev");
    say("pulumi preview (stack config from Pulumi.dev.yaml)");
    const preview = await engine.pulumi(["preview", "--diff"]);
    const creates = (preview.match(/^\s*\+ /gm) ?? []).length;
    say(`  preview plans ${creates} creates`);
    say("pulumi up");
    await engine.pulumi(["up", "--yes", "--skip-preview"]);
    say("waiting for a proxy on every node, and for hello and world");
    await waitForMesh(cluster.kubeconfig, cluster.hosts.length, "default");
    const result = await runWalkthrough(cluster.kubeconfig, cluster.hosts, cluster.workDir, "default", say);
    const checks = walkthroughChecks(result);
    process.stdout.write("\nSummary\n");
    for (const c of checks) process.stdout.write(`  ${c.ok ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}\n`);
    process.stdout.write(`\n  hello said: ${result.hello.trim()}\n  the proxy said: ${result.pong.trim()}\n\n`);
    say(`zt-mesh check --kubeconfig ${cluster.controlPlane.adminKubeconfig}`);
    const health = await meshHealth(cluster.controlPlane.adminKubeconfig);
    process.stdout.write(`${health.out.replace(/^/gm, "  ")}\n`);
    return checks.every((c) => c.ok) && health.code === 0 ? 0 : 1;
  } catch (err) {
    say(`failed: ${(err as Error).message}`);
    return 1;
  } finally {
    await teardown();
    say("done");
  }
}

main().then((code) => process.exit(code));
