// Binding a logical name (/svc/hello) through dtabs to a destination. Later
// dentries take precedence; a negative branch (~, or a Service that does not
// exist) falls through to the next alternative or earlier dentry, as in
// Finagle. Work per resolution is bounded, because l5d-dtab headers are input.
import type { Endpoint } from "../discovery/endpoint-index";
import { type Dentry, type Dtab, type NameTree, type Path, type PrefixElem, WILDCARD, type WeightedTree, showPath } from "@zt-mesh/proxy-config";
import { lookupSystem } from "./system-names";

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

/**
 * What a name binds to. `union` is a weighted choice made per request (see
 * choose); the branches of a union are never neg or fail.
 */
export type Resolution =
  | { readonly kind: "bound"; readonly dest: Destination }
  | { readonly kind: "union"; readonly branches: readonly WeightedResolution[]; readonly total: number }
  /** Binds to nothing ($, /$/nil): the name exists, requests to it fail. */
  | { readonly kind: "empty"; readonly reason: string }
  /** Could not be bound (a malformed address, an unknown namer, a loop): requests fail. */
  | { readonly kind: "error"; readonly reason: string }
  /** No destination here: the next alternative or earlier dentry is tried. */
  | { readonly kind: "neg"; readonly reason: string }
  /** Explicit failure (!, /$/fail): alternatives stop here; a union drops it, as Finagle does. */
  | { readonly kind: "fail"; readonly reason: string };

/** One request's outcome: a resolution with every union's choice made. */
export type Chosen = Exclude<Resolution, { readonly kind: "union" }>;

export interface WeightedResolution {
  readonly weight: number;
  readonly res: Resolution;
}

/** Looks up a namer path (the labels after /#/<namer-id>). */
export interface Namer {
  lookup(rest: Path): Resolution;
}

/**
 * Told about each step of a binding, for the admin explanation; the request
 * path passes none. A `delegated` step's outcome arrives in `settled`.
 */
export interface DelegationObserver {
  delegated(depth: number, path: Path, table: number, index: number, dentry: Dentry): number;
  settled(step: number, outcome: Resolution): void;
  lookedUp(depth: number, path: Path, by: string, outcome: Resolution | Path): void;
}

const MAX_DELEGATION_DEPTH = 32;
const MAX_RESOLUTION_STEPS = 1000;

interface Binding {
  steps: number;
  readonly observer: DelegationObserver | undefined;
}

export class Resolver {
  constructor(private readonly namers: ReadonlyMap<string, Namer>) {}

  /** The namer ids this resolver binds under /#/. */
  namerIds(): string[] {
    return [...this.namers.keys()];
  }

  /**
   * Binds `name` and makes this request's choice in any weighted union; with
   * `chosenEndpoint`, the branch holding that endpoint (see choose).
   */
  resolve(dtabs: readonly Dtab[], name: Path, chosenEndpoint?: string): Chosen {
    return choose(this.bind(dtabs, name), chosenEndpoint);
  }

  /**
   * Binds `name` through `dtabs` applied in order (later tables override
   * earlier ones), keeping weighted unions whole.
   */
  bind(dtabs: readonly Dtab[], name: Path, observer?: DelegationObserver): Resolution {
    return this.bindPath(dtabs, name, 0, { steps: 0, observer });
  }

  // As linkerd 1's interpreter does: dentries first, whatever the path (so a
  // dentry for /#/... or /$/... redirects a bound name); a namer or system name
  // is asked only when no dentry matches.
  private bindPath(dtabs: readonly Dtab[], path: Path, depth: number, b: Binding): Resolution {
    if (++b.steps > MAX_RESOLUTION_STEPS) {
      return { kind: "error", reason: `resolution of ${showPath(path)} exceeded ${MAX_RESOLUTION_STEPS} steps` };
    }
    if (depth > MAX_DELEGATION_DEPTH) {
      return { kind: "error", reason: `delegation deeper than ${MAX_DELEGATION_DEPTH} at ${showPath(path)} (loop?)` };
    }
    let matched = false;
    let negReason = "";
    for (let t = dtabs.length - 1; t >= 0; t--) {
      const dtab = dtabs[t]!;
      for (let i = dtab.length - 1; i >= 0; i--) {
        const dentry = dtab[i]!;
        if (!matches(dentry.prefix, path)) continue;
        matched = true;
        const step = b.observer?.delegated(depth, path, t, i, dentry);
        const r = this.bindTree(dtabs, dentry.dst, path.slice(dentry.prefix.length), depth + 1, b);
        if (step !== undefined) b.observer!.settled(step, r);
        if (r.kind !== "neg") return r;
        negReason = r.reason;
      }
    }
    if (matched) return { kind: "neg", reason: negReason };
    const head = path[0];
    if (head === "#") return this.bindNamer(path, depth, b);
    if (head === "$") return this.bindSystem(dtabs, path, depth, b);
    return { kind: "neg", reason: `no dentry matches ${showPath(path)}` };
  }

  private bindTree(dtabs: readonly Dtab[], tree: NameTree, suffix: Path, depth: number, b: Binding): Resolution {
    switch (tree.kind) {
      case "leaf":
        return this.bindPath(dtabs, suffix.length === 0 ? tree.path : [...tree.path, ...suffix], depth, b);
      case "neg":
        return { kind: "neg", reason: "delegated to ~" };
      case "fail":
        return { kind: "fail", reason: "delegated to ! (explicit failure)" };
      case "empty":
        return { kind: "empty", reason: "delegated to $ (binds to nothing)" };
      case "alt": {
        let last: Resolution = { kind: "neg", reason: "no alternative bound" };
        for (const t of tree.trees) {
          last = this.bindTree(dtabs, t, suffix, depth, b);
          if (last.kind !== "neg") return last;
        }
        return last;
      }
      case "union":
        return this.bindUnion(dtabs, tree.branches, suffix, depth, b);
    }
  }

  // Finagle drops negative and explicitly failed branches, keeps the rest with
  // their weights (an empty branch's share of requests fails), and treats a
  // union left with one branch as that branch, whatever its weight.
  private bindUnion(
    dtabs: readonly Dtab[],
    weighted: readonly WeightedTree[],
    suffix: Path,
    depth: number,
    b: Binding,
  ): Resolution {
    const branches: WeightedResolution[] = [];
    let total = 0;
    let dropped = "no union branch bound";
    for (const w of weighted) {
      const res = this.bindTree(dtabs, w.tree, suffix, depth, b);
      if (res.kind === "neg" || res.kind === "fail") {
        dropped = res.reason;
        continue;
      }
      branches.push({ weight: w.weight, res });
      total += w.weight;
    }
    if (branches.length === 0) return { kind: "neg", reason: `every union branch is negative (last: ${dropped})` };
    if (branches.length === 1) return branches[0]!.res;
    return { kind: "union", branches, total };
  }

  private bindNamer(path: Path, depth: number, b: Binding): Resolution {
    const id = path[1];
    const namer = id === undefined ? undefined : this.namers.get(id);
    const r: Resolution =
      namer === undefined
        ? { kind: "error", reason: `no namer ${showPath(path.slice(0, 2))} (configured: ${this.namerIds().map((n) => `/#/${n}`).join(", ")})` }
        : namer.lookup(path.slice(2));
    b.observer?.lookedUp(depth, path, `/#/${id ?? ""}`, r);
    return r;
  }

  private bindSystem(dtabs: readonly Dtab[], path: Path, depth: number, b: Binding): Resolution {
    const r = lookupSystem(path);
    b.observer?.lookedUp(depth, path, showPath(path.slice(0, 2)), r.kind === "rewrite" ? r.path : r);
    return r.kind === "rewrite" ? this.bindPath(dtabs, r.path, depth + 1, b) : r;
  }
}

/**
 * This request's destination: a weighted choice in every union, as Finagle's
 * Drv makes it. The receiving proxy passes the endpoint the sending proxy
 * chose, so a union applied on both hops (an l5d-dtab travels with the
 * request) is chosen once, not twice: `9 * /svc/web & 1 * /$/nil` fails 10%
 * of requests, not 19%.
 */
function choose(res: Resolution, chosenEndpoint?: string): Chosen {
  let r = res;
  while (r.kind === "union") {
    r = (chosenEndpoint !== undefined ? branchHolding(r.branches, chosenEndpoint) : undefined) ?? pick(r.branches, r.total);
  }
  return r;
}

function branchHolding(branches: readonly WeightedResolution[], key: string): Resolution | undefined {
  for (const b of branches) if (holds(b.res, key)) return b.res;
  return undefined;
}

function holds(res: Resolution, key: string): boolean {
  if (res.kind === "union") return branchHolding(res.branches, key) !== undefined;
  if (res.kind !== "bound" || res.dest.kind !== "service") return false;
  for (const e of res.dest.endpoints) if (e.key === key) return true;
  return false;
}

function pick(branches: readonly WeightedResolution[], total: number): Resolution {
  // All weights zero: an even split.
  if (total === 0) return branches[Math.floor(Math.random() * branches.length)]!.res;
  let left = Math.random() * total;
  let last = branches[0]!;
  for (const branch of branches) {
    if (branch.weight === 0) continue;
    last = branch;
    left -= branch.weight;
    if (left < 0) return branch.res;
  }
  return last.res;
}

function matches(prefix: readonly PrefixElem[], path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    const p = prefix[i];
    if (p !== WILDCARD && p !== path[i]) return false;
  }
  return true;
}
