// Drives the real Pulumi engine (built from Go modules by
// tools/build-pulumi.sh) against the local cluster: a local file backend,
// a passphrase secrets provider, plugins found on PATH, never a download.
import { execFile } from "node:child_process";
import { appendFile, copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = join(__dirname, "..", "..");

export interface PulumiEngine {
  readonly binDir: string;
  readonly stateDir: string;
  readonly stack: string;
  /** The stack's config file: a copy, so the repo's stack files are never written to. */
  readonly configFile: string;
  readonly env: NodeJS.ProcessEnv;
  pulumi(args: readonly string[], timeoutMs?: number): Promise<string>;
  outputs(showSecrets?: boolean): Promise<Record<string, unknown>>;
}

export async function pulumiBinaries(progress: (s: string) => void): Promise<string> {
  progress("Pulumi engine and providers: building or reusing (the first build takes a long while on 2 cores)");
  const { stdout } = await run("bash", [join(ROOT, "tools", "build-pulumi.sh")], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim().split("\n").pop()!;
}

/**
 * A Pulumi stack named `stack` in a fresh local backend under `workDir`, with
 * the config of the repo's `Pulumi.<from>.yaml`.
 */
export async function pulumiStack(
  binDir: string,
  workDir: string,
  kubeconfigPath: string,
  stack: string,
  from: string,
): Promise<PulumiEngine> {
  const stateDir = join(workDir, "pulumi-state");
  await mkdir(stateDir, { recursive: true });
  const configFile = join(workDir, `Pulumi.${stack}.yaml`);
  await copyFile(join(ROOT, `Pulumi.${from}.yaml`), configFile);
  const env: NodeJS.ProcessEnv = {
    PATH: `${binDir}:${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: process.env.HOME ?? "/root",
    PULUMI_HOME: join(workDir, "pulumi-home"),
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_CONFIG_PASSPHRASE: "zt-mesh-local-demo",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    KUBECONFIG: kubeconfigPath,
    CI: "true",
  };
  const pulumi = async (args: readonly string[], timeoutMs = 15 * 60_000): Promise<string> => {
    try {
      const { stdout } = await run("pulumi", [...args, "--non-interactive"], {
        cwd: ROOT,
        env,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`pulumi ${args.join(" ")} failed: ${e.message}\n${(e.stdout ?? "").slice(-4000)}\n${(e.stderr ?? "").slice(-4000)}`);
    }
  };
  // `stack init` takes no --config-file: it writes the passphrase salt into the
  // project's Pulumi.<stack>.yaml. Move it into the copy and leave the repo as it was.
  const written = join(ROOT, `Pulumi.${stack}.yaml`);
  await pulumi(["stack", "init", stack, "--secrets-provider", "passphrase"]);
  const salt = await readFile(written, "utf8").catch(() => "");
  await rm(written, { force: true });
  await appendFile(configFile, `\n${salt}`);
  return {
    binDir,
    stateDir,
    stack,
    configFile,
    env,
    pulumi: (args, timeoutMs) => pulumi([...args, "--stack", stack, "--config-file", configFile], timeoutMs),
    async outputs(showSecrets = false) {
      const out = await pulumi(["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : []), "--stack", stack]);
      return JSON.parse(out) as Record<string, unknown>;
    },
  };
}

/** The stack's state file, as the file backend stores it. */
export async function stateFile(engine: PulumiEngine, project = "zt-mesh"): Promise<string> {
  return readFile(join(engine.stateDir, ".pulumi", "stacks", project, `${engine.stack}.json`), "utf8");
}
