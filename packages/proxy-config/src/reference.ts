// The config reference table in docs/configuration.md is generated from the schema, so
// the documented keys, defaults and meanings are the ones the proxy enforces.
import { z } from "zod";
import { RELOAD_META, configSchema } from "./schema";

export interface ReferenceRow {
  readonly key: string;
  readonly type: string;
  readonly default: string;
  readonly description: string;
  /** When a changed value takes effect: at once on reload, or at the next restart. */
  readonly reload: "live" | "restart";
}

interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  enum?: unknown[];
  anyOf?: JsonSchemaNode[];
  default?: unknown;
  description?: string;
  [RELOAD_META]?: string;
}

function typeOf(node: JsonSchemaNode): string {
  if (node.enum !== undefined) return node.enum.map((v) => JSON.stringify(v)).join(" \\| ");
  if (node.anyOf !== undefined) return [...new Set(node.anyOf.map(typeOf))].join(" \\| ");
  if (node.type === "array" && node.items !== undefined) return `${typeOf(node.items)}[]`;
  return Array.isArray(node.type) ? node.type.join(" \\| ") : (node.type ?? "any");
}

/** One row per key, in schema order. */
export function configReference(): ReferenceRow[] {
  const root = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchemaNode;
  const rows: ReferenceRow[] = [];
  for (const [section, node] of Object.entries(root.properties ?? {})) {
    for (const [key, leaf] of Object.entries(node.properties ?? {})) {
      rows.push({
        key: `${section}.${key}`,
        type: typeOf(leaf),
        default: JSON.stringify(leaf.default ?? null),
        description: leaf.description ?? "",
        reload: leaf[RELOAD_META] === "restart" ? "restart" : "live",
      });
    }
  }
  return rows;
}

export function configReferenceMarkdown(): string {
  const lines = ["| key | type | default | on reload | meaning |", "| --- | --- | --- | --- | --- |"];
  for (const r of configReference()) {
    lines.push(
      `| \`${r.key}\` | ${r.type} | \`${r.default.replace(/\|/g, "\\|")}\` | ${r.reload} | ${r.description.replace(/\|/g, "\\|")} |`,
    );
  }
  return lines.join("\n");
}
