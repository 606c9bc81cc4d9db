// The explanation behind GET /admin/delegate, in the spirit of linkerd 1's dtab
// playground: how a name binds through the dtab in force (plus an optional
// override, read exactly as an l5d-dtab header is), step by step, and what it
// ends at, endpoints included. Read-only: nothing is sent anywhere.
import type { LiveSettings } from "../config/live";
import type { Direction } from "../telemetry/metrics";
import { type Dentry, type Dtab, DtabError, type NameTree, type Path, parsePath, showDtab, showPath, showTree } from "@zt-mesh/proxy-config";
import type { DtabHeaderCache } from "./dtab-header";
import type { DelegationObserver, Resolution, Resolver } from "./resolve";

export interface ExplainQuery {
  readonly direction: Direction;
  /** The name to bind, e.g. /svc/world. */
  readonly path: string;
  /** Override lines, each read as one l5d-dtab header line. */
  readonly dtab: readonly string[];
}

export interface Step {
  readonly depth: number;
  readonly path: string;
  /** A dentry rewrote the path: which one, from which table, into what. */
  readonly dentry?: string;
  readonly table?: "base" | "override";
  /** 1-based, as configuration errors count dentries. */
  readonly index?: number;
  readonly tree?: string;
  /** A namer or system name was asked. */
  readonly lookup?: string;
  readonly rewritten?: string;
  outcome: string;
}

export type ResultTree =
  | { readonly kind: "bound"; readonly id: string; readonly service?: string; readonly endpoints: readonly BoundEndpoint[] }
  | { readonly kind: "union"; readonly branches: readonly { weight: number; share: number; result: ResultTree }[] }
  | { readonly kind: "empty" | "error" | "neg" | "fail"; readonly reason: string };

export interface BoundEndpoint {
  readonly address: string;
  readonly node?: string;
}

export interface Explanation {
  readonly direction: Direction;
  readonly path: string;
  readonly dtab: { readonly base: string; readonly override: string };
  readonly steps: readonly Step[];
  readonly result: ResultTree;
}

export type ExplainAnswer = { readonly ok: true; readonly explanation: Explanation } | { readonly ok: false; readonly error: string };

export class DelegationExplainer {
  constructor(
    private readonly current: () => LiveSettings,
    private readonly resolvers: Readonly<Record<Direction, Resolver>>,
    /** Its own cache, so admin queries do not evict the request path's entries. */
    private readonly overrides: DtabHeaderCache,
  ) {}

  /** The query of GET /admin/delegate: path, optional dtab (repeatable), direction. */
  explainQuery(params: URLSearchParams): ExplainAnswer {
    const path = params.get("path");
    if (path === null) return { ok: false, error: "missing query parameter path (e.g. ?path=/svc/world)" };
    const direction = params.get("direction") ?? "outgoing";
    if (direction !== "outgoing" && direction !== "incoming") {
      return { ok: false, error: `direction must be outgoing or incoming, not ${JSON.stringify(direction.slice(0, 32))}` };
    }
    return this.explain({ direction, path, dtab: params.getAll("dtab") });
  }

  explain(q: ExplainQuery): ExplainAnswer {
    let name: Path;
    try {
      name = parsePath(q.path);
    } catch (err) {
      if (!(err instanceof DtabError)) throw err;
      return { ok: false, error: `bad path: ${err.message}` };
    }
    const parsed = this.overrides.parse(q.dtab.length === 0 ? undefined : q.dtab);
    if (!parsed.ok) return { ok: false, error: parsed.error };

    const settings = this.current();
    const base = q.direction === "outgoing" ? settings.outgoingDtab : settings.incomingDtab;
    const dtabs: readonly Dtab[] = parsed.dtab.length === 0 ? [base] : [base, parsed.dtab];
    const recorder = new StepRecorder();
    const res = this.resolvers[q.direction].bind(dtabs, name, recorder);
    return {
      ok: true,
      explanation: {
        direction: q.direction,
        path: showPath(name),
        dtab: { base: showDtab(base), override: showDtab(parsed.dtab) },
        steps: recorder.steps,
        result: resultTree(res),
      },
    };
  }
}

class StepRecorder implements DelegationObserver {
  readonly steps: Step[] = [];

  delegated(depth: number, path: Path, table: number, index: number, dentry: Dentry): number {
    this.steps.push({
      depth,
      path: showPath(path),
      dentry: `${showPath(dentry.prefix)} => ${showTree(dentry.dst)};`,
      table: table === 0 ? "base" : "override",
      index: index + 1,
      tree: showTree(withSuffix(dentry.dst, path.slice(dentry.prefix.length))),
      outcome: "pending",
    });
    return this.steps.length - 1;
  }

  settled(step: number, outcome: Resolution): void {
    this.steps[step]!.outcome = summary(outcome);
  }

  lookedUp(depth: number, path: Path, by: string, outcome: Resolution | Path): void {
    const rewrite = Array.isArray(outcome);
    this.steps.push({
      depth,
      path: showPath(path),
      lookup: by,
      ...(rewrite ? { rewritten: showPath(outcome as Path) } : {}),
      outcome: rewrite ? "rewritten" : summary(outcome as Resolution),
    });
  }
}

/** The dentry's destination as it applies to this path: the unmatched rest appended to each leaf. */
function withSuffix(tree: NameTree, suffix: Path): NameTree {
  if (suffix.length === 0) return tree;
  switch (tree.kind) {
    case "leaf":
      return { kind: "leaf", path: [...tree.path, ...suffix] };
    case "alt":
      return { kind: "alt", trees: tree.trees.map((t) => withSuffix(t, suffix)) };
    case "union":
      return { kind: "union", branches: tree.branches.map((b) => ({ weight: b.weight, tree: withSuffix(b.tree, suffix) })) };
    default:
      return tree;
  }
}

function summary(res: Resolution): string {
  switch (res.kind) {
    case "bound":
      return `bound ${res.dest.id}`;
    case "union":
      return `union of ${res.branches.length} branches`;
    default:
      return `${res.kind}: ${res.reason}`;
  }
}

function resultTree(res: Resolution): ResultTree {
  switch (res.kind) {
    case "bound": {
      const d = res.dest;
      if (d.kind === "inet") return { kind: "bound", id: d.id, endpoints: [{ address: hostPort(d.host, d.port) }] };
      return {
        kind: "bound",
        id: d.id,
        service: d.service,
        endpoints: d.endpoints.map((e) => ({ address: hostPort(e.ip, e.port), ...(e.nodeName === undefined ? {} : { node: e.nodeName }) })),
      };
    }
    case "union": {
      const n = res.branches.length;
      return {
        kind: "union",
        branches: res.branches.map((b) => ({
          weight: b.weight,
          share: res.total === 0 ? 1 / n : b.weight / res.total,
          result: resultTree(b.res),
        })),
      };
    }
    default:
      return { kind: res.kind, reason: res.reason };
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
