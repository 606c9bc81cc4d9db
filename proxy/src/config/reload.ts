// The reload contract: which keys a reloaded config may change in the running
// proxy, and what it keeps when the file changes one it cannot. The schema
// marks each restart-required key; everything else applies live.
import { type ProxyConfig, configReference } from "@zt-mesh/proxy-config";

type Section = keyof ProxyConfig;

/** `section.key` of every key the schema marks restart-required, in schema order. */
const RESTART_REQUIRED: readonly (readonly [Section, string])[] = configReference()
  .filter((row) => row.reload === "restart")
  .map((row) => {
    const dot = row.key.indexOf(".");
    return [row.key.slice(0, dot) as Section, row.key.slice(dot + 1)] as const;
  });

export interface Reload {
  /** The config to run with: the file's, except restart-required keys keep their running values. */
  readonly effective: ProxyConfig;
  /** Restart-required keys (`section.key`) whose value in the file differs from the running one. */
  readonly restartPending: readonly string[];
}

function valueOf(config: ProxyConfig, section: Section, key: string): unknown {
  return (config[section] as Record<string, unknown>)[key];
}

function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Splits a reloaded config into what applies now and what waits for a restart. */
export function planReload(running: ProxyConfig, next: ProxyConfig): Reload {
  const restartPending: string[] = [];
  const effective = { ...next } as Record<Section, Record<string, unknown>>;
  for (const [section, key] of RESTART_REQUIRED) {
    const kept = valueOf(running, section, key);
    if (same(kept, valueOf(next, section, key))) continue;
    restartPending.push(`${section}.${key}`);
    effective[section] = { ...effective[section], [key]: kept };
  }
  return { effective: effective as unknown as ProxyConfig, restartPending };
}
