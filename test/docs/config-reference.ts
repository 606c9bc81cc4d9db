// Generates the README's config reference table from Pulumi.yaml, the one place
// config keys are declared.
//
//   npm run docs:config            rewrite the table in README.md
//   npm run docs:config -- --check exit 1 if README.md is out of date
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export const BEGIN = "<!-- stack-config-reference:begin (generated from Pulumi.yaml by `npm run docs:config`; do not edit by hand) -->";
export const END = "<!-- stack-config-reference:end -->";

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

/** `readme` with the text between the markers replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${BEGIN} ... ${END}`);
  return `${readme.slice(0, start + BEGIN.length)}\n${table}\n${readme.slice(end)}`;
}

function main(args: readonly string[]): number {
  const readmePath = join(ROOT, "README.md");
  const readme = readFileSync(readmePath, "utf8");
  const updated = withTable(readme, configTable(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")));
  if (args.includes("--check")) {
    if (updated === readme) return 0;
    process.stderr.write("README.md's config reference is out of date: run npm run docs:config\n");
    return 1;
  }
  if (updated !== readme) writeFileSync(readmePath, updated);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
