// Runs one container of a pod as a process on the pod's emulated host: in the
// host's network namespace, with the pod's volumes bind-mounted read-only at
// their mount paths (in a private mount namespace, so nothing leaks onto the
// machine), the downward-API environment, and the user and capabilities the
// securityContext asks for.
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { GATEWAY, type Host, inHost } from "../hosts";
import { onThisMachine, programFor } from "../images";
import type { MaterialisedVolume } from "./volumes";

export const API_PORT = 6443;

/** Mount points this run had to create on the machine, removed again by the cluster's teardown. */
export const createdMountPoints = new Set<string>();

export class ImageError extends Error {
  override name = "ImageError";
}

function fieldValue(pod: V1Pod, host: Host, path: string): string {
  switch (path) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.podIP":
    case "status.hostIP":
      // All pods of an emulated host share its network namespace.
      return host.ip;
    default:
      return "";
  }
}

/** Kubernetes' $(VAR) expansion; $$ escapes. */
export function expand(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    name === undefined ? "$" : (vars[name] ?? m),
  );
}

export function containerEnv(pod: V1Pod, container: V1Container, host: Host): Record<string, string> {
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/tmp",
    HOSTNAME: pod.metadata?.name ?? "",
    KUBERNETES_SERVICE_HOST: GATEWAY,
    KUBERNETES_SERVICE_PORT: String(API_PORT),
  };
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = expand(e.value, env);
    else if (e.valueFrom?.fieldRef !== undefined) env[e.name] = fieldValue(pod, host, e.valueFrom.fieldRef.fieldPath);
  }
  return env;
}

export interface RunningContainer {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

export async function startContainer(
  pod: V1Pod,
  container: V1Container,
  host: Host,
  volumes: ReadonlyMap<string, MaterialisedVolume>,
  logPath: string,
): Promise<RunningContainer> {
  const program = programFor(container.image ?? "");
  if (program === undefined) throw new ImageError(`no program for image ${container.image}`);
  const env = containerEnv(pod, container, host);
  const argv = [
    ...(container.command === undefined ? program.entrypoint : onThisMachine(container.command.map((c) => expand(c, env)))),
    ...(container.args ?? []).map((a) => expand(a, env)),
  ];

  const mounts: string[] = [];
  // Every container shares this machine's filesystem: a mount over a directory
  // that holds the pod's volume sources or the program itself (an emptyDir on
  // /tmp while the cluster's files or the checkout live under /tmp) would hide
  // them. Such a mount is left out; the machine's directory stays writable.
  const needed = [...[...volumes.values()].map((v) => v.path), program.cwd, ...program.entrypoint.filter((a) => a.startsWith("/"))];
  const shadows = (mountPath: string): boolean => {
    const dir = mountPath.endsWith("/") ? mountPath : `${mountPath}/`;
    return needed.some((p) => p === mountPath || p.startsWith(dir));
  };
  for (const m of container.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (v === undefined) continue;
    if (shadows(m.mountPath)) {
      mounts.push(`echo 'node agent: volume ${m.name} not mounted at ${m.mountPath}: it would hide the pod sources or the program' >&2`);
      continue;
    }
    const created = await mkdir(m.mountPath, { recursive: true });
    if (created !== undefined) createdMountPoints.add(created);
    mounts.push(`mount --bind '${v.path}' '${m.mountPath}' && mount -o remount,bind,ro '${m.mountPath}'`);
  }
  const sc = { ...pod.spec?.securityContext, ...container.securityContext };
  const uid = sc.runAsUser;
  const gid = sc.runAsGroup ?? uid;
  const drop = container.securityContext?.capabilities?.drop?.includes("ALL") === true;
  const priv =
    uid === undefined
      ? []
      : [
          "setpriv",
          `--reuid=${uid}`,
          `--regid=${gid}`,
          // The kubelet adds fsGroup to the container's supplementary groups.
          ...(pod.spec?.securityContext?.fsGroup !== undefined ? [`--groups=${pod.spec.securityContext.fsGroup}`] : ["--clear-groups"]),
          ...(drop ? ["--inh-caps=-all", "--bounding-set=-all"] : []),
          ...(sc.allowPrivilegeEscalation === false ? ["--no-new-privs"] : []),
          "--",
        ];
  const script = [...mounts, 'exec "$@"'].join(" && ");
  const full = inHost(host, ["sh", "-c", script, "container", ...priv, ...argv]);

  // The container writes its log file itself (appending across restarts), as a
  // runtime does: nothing of it passes through the agent.
  const log = openSync(logPath, "a");
  const child = spawn(full[0]!, full.slice(1), { cwd: program.cwd, env, detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { name: container.name, child, exited };
}

/** SIGTERM, then SIGKILL after the grace period, to the container's whole process group. */
export async function stopContainer(c: RunningContainer, graceMs: number): Promise<void> {
  if (c.child.exitCode !== null || c.child.pid === undefined) return;
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-c.child.pid!, sig);
    } catch {
      // Already gone.
    }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  await c.exited;
  clearTimeout(timer);
}
