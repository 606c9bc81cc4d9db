// Binding a logical name (/svc/hello) through dtabs to a destination. Later
// dentries take precedence; a branch that binds to nothing (~, or a Service that
// does not exist) falls through to the next alternative or earlier dentry, as in
// Finagle. Work per resolution is bounded, because l5d-dtab headers are input.
import type { Endpoint } from "../discovery/endpoint-index";
import { type Dtab, type NameTree, type Path, WILDCARD, type PrefixElem, showPath } from "./dtab";

export interface ServiceDestination {
  readonly kind: "service";
  /** The bound name, e.g. /#/io.l5d.k8s/default/http/world. */
  readonly id: string;
  /** namespace/service, the label metrics use. */
  readonly service: string;
  readonly endpoints: readonly Endpoint[];
}

export interface InetDestination {
  readonly kind: "inet";
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export type Destination = ServiceDestination | InetDestination;

export type Resolution =
  | { readonly kind: "bound"; readonly dest: Destination }
  | { readonly kind: "neg"; readonly reason: string }
  | { readonly kind: "fail"; readonly reason: string };

/** Looks up a namer path (the labels after /#/<namer-id>). */
export interface Namer {
  lookup(rest: Path): Resolution;
}

export const MAX_DELEGATION_DEPTH = 32;
export const MAX_RESOLUTION_STEPS = 1000;

export class Resolver {
  constructor(private readonly namers: ReadonlyMap<string, Namer>) {}

  /** Resolves `name` through `dtabs` applied in order (later tables override earlier ones). */
  resolve(dtabs: readonly Dtab[], name: Path): Resolution {
    const state = { steps: 0 };
    return this.bindPath(dtabs, name, 0, state);
  }

  private bindPath(dtabs: readonly Dtab[], path: Path, depth: number, state: { steps: number }): Resolution {
    if (++state.steps > MAX_RESOLUTION_STEPS) {
      return { kind: "fail", reason: `resolution of ${showPath(path)} exceeded ${MAX_RESOLUTION_STEPS} steps` };
    }
    if (depth > MAX_DELEGATION_DEPTH) {
      return { kind: "fail", reason: `delegation deeper than ${MAX_DELEGATION_DEPTH} at ${showPath(path)} (loop?)` };
    }
    const head = path[0];
    if (head === "#") return this.bindNamer(path);
    if (head === "$") return bindSystem(path);

    let negReason = `no dentry matches ${showPath(path)}`;
    for (let t = dtabs.length - 1; t >= 0; t--) {
      const dtab = dtabs[t]!;
      for (let i = dtab.length - 1; i >= 0; i--) {
        const dentry = dtab[i]!;
        if (!matches(dentry.prefix, path)) continue;
        const r = this.bindTree(dtabs, dentry.dst, path.slice(dentry.prefix.length), depth + 1, state);
        if (r.kind !== "neg") return r;
        negReason = r.reason;
      }
    }
    return { kind: "neg", reason: negReason };
  }

  private bindTree(
    dtabs: readonly Dtab[],
    tree: NameTree,
    suffix: Path,
    depth: number,
    state: { steps: number },
  ): Resolution {
    switch (tree.kind) {
      case "leaf":
        return this.bindPath(dtabs, suffix.length === 0 ? tree.path : [...tree.path, ...suffix], depth, state);
      case "neg":
        return { kind: "neg", reason: "delegated to ~" };
      case "fail":
        return { kind: "fail", reason: "delegated to ! (explicit failure)" };
      case "empty":
        return { kind: "fail", reason: "delegated to $ (empty)" };
      case "alt": {
        let last: Resolution = { kind: "neg", reason: "no alternative bound" };
        for (const t of tree.trees) {
          last = this.bindTree(dtabs, t, suffix, depth, state);
          if (last.kind !== "neg") return last;
        }
        return last;
      }
      case "union": {
        const bound: { weight: number; r: Resolution }[] = [];
        let other: Resolution = { kind: "neg", reason: "no union branch bound" };
        let total = 0;
        for (const b of tree.branches) {
          const r = this.bindTree(dtabs, b.tree, suffix, depth, state);
          if (r.kind === "bound" && b.weight > 0) {
            bound.push({ weight: b.weight, r });
            total += b.weight;
          } else if (r.kind === "fail" || other.kind === "neg") other = r;
        }
        if (bound.length === 0) return other;
        let pick = Math.random() * total;
        for (const b of bound) {
          pick -= b.weight;
          if (pick < 0) return b.r;
        }
        return bound[bound.length - 1]!.r;
      }
    }
  }

  private bindNamer(path: Path): Resolution {
    const id = path[1];
    const namer = id === undefined ? undefined : this.namers.get(id);
    if (namer === undefined) return { kind: "neg", reason: `no namer for ${showPath(path.slice(0, 2))}` };
    return namer.lookup(path.slice(2));
  }
}

function matches(prefix: readonly PrefixElem[], path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    const p = prefix[i];
    if (p !== WILDCARD && p !== path[i]) return false;
  }
  return true;
}

/** /$/inet/<host>/<port>: a fixed address outside service discovery. */
function bindSystem(path: Path): Resolution {
  if (path[1] !== "inet") return { kind: "neg", reason: `unknown system name ${showPath(path)}` };
  const host = path[2];
  const portText = path[3];
  const port = portText !== undefined && /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (host === undefined || !(port >= 1 && port <= 65535)) {
    return { kind: "fail", reason: `malformed ${showPath(path)}: expected /$/inet/<host>/<port>` };
  }
  return { kind: "bound", dest: { kind: "inet", id: showPath(path.slice(0, 4)), host, port } };
}
