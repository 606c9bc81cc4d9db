// Pulumi.yaml and Pulumi.<stack>.yaml as the Pulumi CLI hands them to a program:
// project defaults under stack values, every value a string (integers and
// booleans spelled out, arrays as JSON).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { PROJECT, type ConfigSource } from "../../../components/settings";

export const REPO = join(__dirname, "..", "..", "..");

export interface DeclaredKey {
  readonly type: "string" | "integer" | "boolean" | "array";
  readonly items?: { readonly type: string };
  readonly default: unknown;
  readonly description: string;
}

export function projectFile(): { name: string; runtime: unknown; config: Record<string, DeclaredKey> } {
  return parse(readFileSync(join(REPO, "Pulumi.yaml"), "utf8"));
}

/** The `config:` map of Pulumi.<stack>.yaml, keys as written (`zt-mesh:demo`). */
export function stackFile(stack: string): Record<string, unknown> {
  const doc = parse(readFileSync(join(REPO, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  return doc.config ?? {};
}

export function asPulumiString(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Full keys (`zt-mesh:demo`) to the strings the program would see for `stack`. */
export function stackConfig(stack: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, declared] of Object.entries(projectFile().config)) {
    values[`${PROJECT}:${key}`] = asPulumiString(declared.default);
  }
  for (const [key, value] of Object.entries({ ...stackFile(stack), ...overrides })) {
    values[key.includes(":") ? key : `${PROJECT}:${key}`] = asPulumiString(value);
  }
  return values;
}

/** A ConfigSource over `stack`'s config, with `overrides` (bare or full keys) on top. */
export function stackSource(stack: string, overrides: Record<string, unknown> = {}): ConfigSource {
  const values = stackConfig(stack, overrides);
  return { get: (key) => values[`${PROJECT}:${key}`] };
}

/** Only the given keys, nothing from any file: what a program sees with no config at all. */
export function sourceOf(values: Record<string, unknown>): ConfigSource {
  return { get: (key) => (key in values ? asPulumiString(values[key]) : undefined) };
}
