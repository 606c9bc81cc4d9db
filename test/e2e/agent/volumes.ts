// Materialises a pod's volumes as files, as the kubelet does: ConfigMaps,
// Secrets, projected service-account tokens and emptyDirs. A projected token
// is requested through the TokenRequest API bound to the pod (the API server
// adds the pod's node to it) and requested anew, as the kubelet does, once it
// is older than 80% of its lifetime or 24 hours. Updates to
// ConfigMaps and Secrets are written the kubelet's way (a new timestamped
// directory and an atomic swap of the ..data symlink), so the proxy sees the
// same kind of change it sees in a real cluster.
import type { CoreV1Api, V1Pod, V1Volume } from "@kubernetes/client-node";
import { chown, mkdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface MaterialisedVolume {
  readonly name: string;
  readonly path: string;
  /** Re-reads the source objects and swaps the files in place if they changed. */
  refresh(): Promise<boolean>;
}

type Files = Map<string, { data: Buffer; mode: number }>;

/** A projected token and when the kubelet would replace it (epoch ms). */
interface HeldToken {
  readonly token: string;
  readonly renewAt: number;
}

const TOKEN_RENEWAL_FRACTION = 0.8;
const TOKEN_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * Writes `files` as a new version and swaps it in. With an fsGroup the files
 * belong to that group, as the kubelet makes them, so a non-root container can
 * read a Secret mounted with mode 0440.
 */
async function writeAtomically(dir: string, files: Files, previous: { digest: string }, fsGroup: number | undefined): Promise<boolean> {
  const digest = [...files.entries()].map(([k, v]) => `${k}:${v.mode}:${v.data.toString("base64")}`).sort().join("\n");
  if (digest === previous.digest) return false;
  previous.digest = digest;
  const version = `..${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(join(dir, version), { recursive: true });
  for (const [key, { data, mode }] of files) {
    await mkdir(join(dir, version, key, ".."), { recursive: true });
    await writeFile(join(dir, version, key), data, { mode });
    if (fsGroup !== undefined) await chown(join(dir, version, key), 0, fsGroup);
  }
  const old = await readlink(join(dir, "..data")).catch(() => undefined);
  await symlink(version, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const key of files.keys()) {
    const top = key.split("/")[0]!;
    await symlink(join("..data", top), join(dir, top)).catch(() => undefined);
  }
  if (old !== undefined) await rm(join(dir, old), { recursive: true, force: true });
  return true;
}

function pick(
  data: Record<string, Buffer>,
  items: readonly { key: string; path: string; mode?: number }[] | undefined,
  defaultMode: number,
): Files {
  const files: Files = new Map();
  if (items === undefined || items.length === 0) {
    for (const [k, v] of Object.entries(data)) files.set(k, { data: v, mode: defaultMode });
  } else {
    for (const it of items) {
      const v = data[it.key];
      if (v !== undefined) files.set(it.path, { data: v, mode: it.mode ?? defaultMode });
    }
  }
  return files;
}

export async function materialise(
  core: CoreV1Api,
  pod: V1Pod,
  volume: V1Volume,
  dir: string,
  tokenAudience: string,
): Promise<MaterialisedVolume> {
  const namespace = pod.metadata!.namespace!;
  const path = join(dir, volume.name);
  await mkdir(path, { recursive: true });
  const state = { digest: "" };

  let load: (() => Promise<Files>) | undefined;
  if (volume.configMap !== undefined) {
    const src = volume.configMap;
    load = async () => {
      const cm = await core.readNamespacedConfigMap({ name: src.name!, namespace });
      const data = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
      return pick(data, src.items, src.defaultMode ?? 0o644);
    };
  } else if (volume.secret !== undefined) {
    const src = volume.secret;
    load = async () => {
      const s = await core.readNamespacedSecret({ name: src.secretName!, namespace });
      const data = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
      return pick(data, src.items, src.defaultMode ?? 0o644);
    };
  } else if (volume.projected !== undefined) {
    const src = volume.projected;
    const tokens = new Map<string, HeldToken>();
    load = async () => {
      const files: Files = new Map();
      const mode = src.defaultMode ?? 0o644;
      for (const s of src.sources ?? []) {
        if (s.serviceAccountToken !== undefined) {
          const { path: tokenPath } = s.serviceAccountToken;
          let held = tokens.get(tokenPath);
          if (held === undefined || Date.now() >= held.renewAt) {
            const lifetimeS = s.serviceAccountToken.expirationSeconds ?? 3607;
            const tr = await core.createNamespacedServiceAccountToken({
              name: pod.spec!.serviceAccountName ?? "default",
              namespace,
              body: {
                spec: {
                  audiences: [s.serviceAccountToken.audience ?? tokenAudience],
                  expirationSeconds: lifetimeS,
                  boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod.metadata!.name!, uid: pod.metadata!.uid! },
                },
              },
            });
            const issued = Date.now();
            const expires = tr.status?.expirationTimestamp?.getTime() ?? issued + lifetimeS * 1000;
            held = {
              token: tr.status?.token ?? "",
              renewAt: issued + Math.min((expires - issued) * TOKEN_RENEWAL_FRACTION, TOKEN_MAX_AGE_MS),
            };
            tokens.set(tokenPath, held);
          }
          files.set(tokenPath, { data: Buffer.from(held.token), mode });
        } else if (s.configMap !== undefined) {
          const cm = await core.readNamespacedConfigMap({ name: s.configMap.name!, namespace });
          const data = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
          for (const [k, v] of pick(data, s.configMap.items, mode)) files.set(k, v);
        } else if (s.secret !== undefined) {
          const sec = await core.readNamespacedSecret({ name: s.secret.name!, namespace });
          const data = Object.fromEntries(Object.entries(sec.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
          for (const [k, v] of pick(data, s.secret.items, mode)) files.set(k, v);
        } else if (s.downwardAPI !== undefined) {
          for (const item of s.downwardAPI.items ?? []) {
            const field = item.fieldRef?.fieldPath;
            const value = field === "metadata.namespace" ? namespace : field === "metadata.name" ? pod.metadata!.name! : "";
            files.set(item.path, { data: Buffer.from(value), mode });
          }
        }
      }
      return files;
    };
  }

  const fsGroup = pod.spec?.securityContext?.fsGroup;
  const refresh = async (): Promise<boolean> =>
    load === undefined ? false : writeAtomically(path, await load(), state, fsGroup);
  await refresh();
  return { name: volume.name, path, refresh };
}
