// A dentry that points at a namer the mesh does not run (/#/io.l5d.consul/...)
// or a system name that does not exist (/$/inet6/...) can never bind. Such a
// table is refused where it enters (config load, and so `pulumi preview`; the
// l5d-dtab header), naming the dentry, rather than routing around it at runtime.
import { type Dtab, type DtabSource, type NameTree, type Path, WILDCARD, showPath, showTree } from "./dtab";
import { SYSTEM_NAMES } from "./namers";

const SYSTEM: readonly string[] = SYSTEM_NAMES;

/**
 * The first problem with the names `source` points at, or undefined. A name
 * also counts as known when a dentry of `source` or of `alongside` rewrites it,
 * since dentries apply before namers.
 */
export function unknownNameProblem(
  source: DtabSource,
  namerIds: readonly string[],
  alongside: readonly Dtab[] = [],
): string | undefined {
  const { dtab, offsets } = source;
  for (let i = 0; i < dtab.length; i++) {
    const dentry = dtab[i]!;
    const leaf = firstUnknownLeaf(dentry.dst, namerIds, dtab, alongside);
    if (leaf === undefined) continue;
    const what =
      leaf[0] === "#"
        ? `/#/${leaf[1]!} is not a configured namer (configured: ${namerIds.map((n) => `/#/${n}`).join(", ")})`
        : `/$/${leaf[1]!} is not a system name (known: ${SYSTEM_NAMES.map((n) => `/$/${n}`).join(", ")})`;
    return `dentry ${i + 1} at offset ${offsets[i]!} (${showPath(dentry.prefix)} => ${showTree(dentry.dst)}): ${what}`;
  }
  return undefined;
}

function firstUnknownLeaf(tree: NameTree, namerIds: readonly string[], dtab: Dtab, alongside: readonly Dtab[]): Path | undefined {
  switch (tree.kind) {
    case "leaf":
      return isUnknown(tree.path, namerIds) && !rewritten(tree.path, dtab, alongside) ? tree.path : undefined;
    case "alt":
      for (const t of tree.trees) {
        const found = firstUnknownLeaf(t, namerIds, dtab, alongside);
        if (found !== undefined) return found;
      }
      return undefined;
    case "union":
      for (const w of tree.branches) {
        const found = firstUnknownLeaf(w.tree, namerIds, dtab, alongside);
        if (found !== undefined) return found;
      }
      return undefined;
    default:
      return undefined;
  }
}

function isUnknown(path: Path, namerIds: readonly string[]): boolean {
  const [head, name] = path;
  if (name === undefined) return false; // /# or /$ alone: the name comes from the suffix at runtime
  if (head === "#") return !namerIds.includes(name);
  if (head === "$") return !SYSTEM.includes(name);
  return false;
}

function rewritten(path: Path, dtab: Dtab, alongside: readonly Dtab[]): boolean {
  for (const table of [dtab, ...alongside]) {
    for (const { prefix } of table) {
      const n = Math.min(prefix.length, 2);
      let all = true;
      for (let i = 0; i < n; i++) if (prefix[i] !== WILDCARD && prefix[i] !== path[i]) all = false;
      if (all) return true;
    }
  }
  return false;
}
