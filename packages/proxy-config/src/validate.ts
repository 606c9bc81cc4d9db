// Parsing and rendering through the schema. The components call renderConfig, the
// proxy calls loadConfigFile: both end in parseConfig, so they cannot disagree.
import { readFile } from "node:fs/promises";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { z } from "zod";
import { type IdentityServiceConfig, identityServiceSchema } from "./identity-service-schema";
import { configSchema, type ProxyConfig, type ProxyConfigInput } from "./schema";

/** Where a config is wrong: the field's path (empty for the whole document) and what is wrong with it. */
export interface ConfigIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export class ConfigError extends Error {
  constructor(
    message: string,
    /** One entry per problem, each starting with the dotted path of the field. */
    readonly problems: readonly string[],
    readonly issues: readonly ConfigIssue[] = [],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "(top level)";
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => (field === "(top level)" ? k : `${field}.${k}`));
    return `${keys.join(", ")}: unknown key${keys.length > 1 ? "s" : ""}`;
  }
  return `${field}: ${issue.message}`;
}

function parseWith<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.output<S> {
  const result = schema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map(describe);
  const issues = result.error.issues.map((i) => ({ path: i.path, message: i.message }));
  throw new ConfigError(`invalid ${source}: ${problems.join("; ")}`, problems, issues);
}

/** Validates and defaults a decoded config; throws ConfigError naming each bad field. */
export function parseConfig(raw: unknown, source = "config"): ProxyConfig {
  return parseWith(configSchema, raw, source);
}

/** Validates and defaults a decoded identity service config, as parseConfig does the proxy's. */
export function parseIdentityServiceConfig(raw: unknown, source = "identity service config"): IdentityServiceConfig {
  return parseWith(identityServiceSchema, raw, source);
}

function parseYamlText(text: string, source: string): unknown {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 16 });
  } catch (err) {
    throw new ConfigError(`invalid ${source}: not YAML: ${(err as Error).message.split("\n")[0]}`, [
      "(top level): not YAML",
    ]);
  }
  return raw;
}

/** Parses YAML (or JSON, which is YAML) text into a validated config. */
export function parseConfigText(text: string, source = "config"): ProxyConfig {
  return parseConfig(parseYamlText(text, source), source);
}

export async function loadConfigFile(path: string): Promise<ProxyConfig> {
  const text = await readFile(path, "utf8");
  return parseConfigText(text, path);
}

export async function loadIdentityServiceConfigFile(path: string): Promise<IdentityServiceConfig> {
  const text = await readFile(path, "utf8");
  return parseIdentityServiceConfig(parseYamlText(text, path), path);
}

/**
 * Renders the config file the proxy will read. Throws ConfigError, naming the
 * field, for anything the proxy would reject, so a bad value fails the deploy.
 */
export function renderConfig(input: ProxyConfigInput): string {
  const config = parseConfig(input);
  return stringifyYaml(config, { lineWidth: 0 });
}
