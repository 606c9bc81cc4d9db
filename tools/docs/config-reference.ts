// Generates the two config reference tables of docs/configuration.md: the stack
// config from Pulumi.yaml, and the proxy's config file from the proxy's own
// schema. Each comes from the one place its keys are declared.
//
//   npm run docs:config            rewrite the tables in docs/configuration.md
//   npm run docs:config -- --check exit 1 if docs/configuration.md is out of date
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { configReferenceMarkdown } from "@zt-mesh/proxy-config";
import { updateFile, withSection } from "./generated";

export const BEGIN = "<!-- stack-config-reference:begin (generated from Pulumi.yaml by `npm run docs:config`; do not edit by hand) -->";
export const END = "<!-- stack-config-reference:end -->";
export const PROXY_BEGIN =
  "<!-- proxy-config-reference:begin (generated from packages/proxy-config/src/schema.ts by `npm run docs:config`; do not edit by hand) -->";
export const PROXY_END = "<!-- proxy-config-reference:end -->";

/** The file the tables live in, relative to the repository root. */
export const CONFIG_DOC = "docs/configuration.md";

const ROOT = join(__dirname, "..", "..");

interface Declared {
  type: string;
  items?: { type: string };
  default?: unknown;
  description?: string;
}

function cell(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "\\|");
}

function showDefault(value: unknown): string {
  if (value === "") return "*(empty)*";
  return `\`${cell(typeof value === "string" ? value : JSON.stringify(value))}\``;
}

/** The Markdown table for the `config:` map of a Pulumi.yaml. */
export function configTable(pulumiYaml: string): string {
  const project = parse(pulumiYaml) as { name: string; config?: Record<string, Declared> };
  const rows = Object.entries(project.config ?? {}).map(([key, d]) => {
    const type = d.type === "array" && d.items ? `array of ${d.items.type}` : d.type;
    return `| \`${project.name}:${key}\` | ${type} | ${showDefault(d.default)} | ${cell(d.description ?? "")} |`;
  });
  return ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** `doc` with the text between the markers replaced by `table`. */
export function withTable(doc: string, table: string, begin = BEGIN, end = END): string {
  return withSection(doc, { begin, end }, table, CONFIG_DOC);
}

/** The document with both generated tables brought up to date. */
export function withTables(doc: string, pulumiYaml: string): string {
  const stack = withTable(doc, configTable(pulumiYaml));
  return withTable(stack, configReferenceMarkdown(), PROXY_BEGIN, PROXY_END);
}

function main(args: readonly string[]): number {
  const pulumiYaml = readFileSync(join(ROOT, "Pulumi.yaml"), "utf8");
  const current = updateFile(join(ROOT, CONFIG_DOC), (doc) => withTables(doc, pulumiYaml), args.includes("--check"));
  if (current) return 0;
  process.stderr.write(`${CONFIG_DOC}'s config references are out of date: run npm run docs:config\n`);
  return 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
