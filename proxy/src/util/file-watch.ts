// Notices when files change. Kubernetes updates mounted Secrets and ConfigMaps by
// swapping a symlink in the directory, which some watchers miss, so directory
// events are backed by a periodic content check. Reads are async; the callback
// runs only when content actually differs.
import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface FileWatch {
  close(): void;
}

const DEBOUNCE_MS = 100;

export function watchFiles(paths: readonly string[], intervalMs: number, onChange: () => void): FileWatch {
  let last: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  let closed = false;

  const digest = async (): Promise<string> => {
    const h = createHash("sha256");
    for (const p of paths) {
      try {
        h.update(await readFile(p));
      } catch {
        h.update(`missing:${p}`);
      }
      h.update("\0");
    }
    return h.digest("hex");
  };

  const check = async (): Promise<void> => {
    if (checking || closed) return;
    checking = true;
    try {
      const d = await digest();
      if (last !== undefined && d !== last && !closed) {
        last = d;
        onChange();
      }
      last = d;
    } finally {
      checking = false;
    }
  };

  void digest().then((d) => {
    last ??= d;
  });

  const schedule = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void check(), DEBOUNCE_MS);
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      const w = watch(dir, { persistent: false }, schedule);
      w.on("error", () => undefined);
      watchers.push(w);
    } catch {
      // The periodic check below still covers a directory we cannot watch.
    }
  }
  const poll = setInterval(() => void check(), intervalMs);
  poll.unref();

  return {
    close(): void {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
