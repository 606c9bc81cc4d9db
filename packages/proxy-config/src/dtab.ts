// Delegation tables, as Finagle and linkerd 1 write them:
//
//   dtab     := dentry (';' dentry)* ';'?
//   dentry   := prefix '=>' tree
//   tree     := union ('|' union)*            alternatives: first that binds wins
//   union    := weighted ('&' weighted)*      weighted split between branches
//   weighted := (number '*')? simple
//   simple   := path | '(' tree ')' | '~' (neg) | '!' (fail) | '$' (empty)
//
// Wherever whitespace may stand, '#' starts a comment that runs to the end of
// the line, as in Finagle; inside a label '#' is an ordinary character (/#/...).
//
// Parsing happens once per distinct text (config load, l5d-dtab header cache),
// so the parser favours exact error positions over speed.

export type Path = readonly string[];

export type NameTree =
  | { readonly kind: "leaf"; readonly path: Path }
  | { readonly kind: "alt"; readonly trees: readonly NameTree[] }
  | { readonly kind: "union"; readonly branches: readonly WeightedTree[] }
  | { readonly kind: "neg" }
  | { readonly kind: "fail" }
  | { readonly kind: "empty" };

export interface WeightedTree {
  readonly weight: number;
  readonly tree: NameTree;
}

/** A prefix element is a literal label or `*`, which matches any one label. */
export type PrefixElem = string | typeof WILDCARD;
export const WILDCARD: unique symbol = Symbol("*");

export interface Dentry {
  readonly prefix: readonly PrefixElem[];
  readonly dst: NameTree;
}

export type Dtab = readonly Dentry[];

export class DtabError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = "DtabError";
  }
}

/** Bounds that keep a hostile `l5d-dtab` header from costing more than its length. */
export const MAX_NESTING = 32;
export const MAX_DENTRIES = 256;

const LABEL_CHAR = /[A-Za-z0-9_:.#$%\-]/;

/** A parsed dtab with where each dentry starts in its text, for messages that point at one. */
export interface DtabSource {
  readonly dtab: Dtab;
  readonly offsets: readonly number[];
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly text: string) {}

  dtab(): DtabSource {
    const entries: Dentry[] = [];
    const offsets: number[] = [];
    this.ws();
    while (!this.atEnd()) {
      if (entries.length >= MAX_DENTRIES) this.fail(`more than ${MAX_DENTRIES} dentries`);
      offsets.push(this.pos);
      entries.push(this.dentry());
      this.ws();
      if (this.atEnd()) break;
      this.expect(";");
      this.ws();
    }
    return { dtab: entries, offsets };
  }

  pathOnly(): Path {
    this.ws();
    const p = this.path(false) as string[];
    this.ws();
    if (!this.atEnd()) this.fail("unexpected text after path");
    return p;
  }

  private dentry(): Dentry {
    const prefix = this.path(true);
    this.ws();
    this.expect("=>");
    this.ws();
    const dst = this.tree();
    return { prefix, dst };
  }

  private tree(): NameTree {
    const first = this.union();
    const trees = [first];
    this.ws();
    while (this.peek() === "|") {
      this.pos++;
      this.ws();
      trees.push(this.union());
      this.ws();
    }
    return trees.length === 1 ? first : { kind: "alt", trees };
  }

  private union(): NameTree {
    const branches = [this.weighted()];
    this.ws();
    while (this.peek() === "&") {
      this.pos++;
      this.ws();
      branches.push(this.weighted());
      this.ws();
    }
    if (branches.length === 1 && branches[0]!.weight === 1) return branches[0]!.tree;
    return { kind: "union", branches };
  }

  private weighted(): WeightedTree {
    const c = this.peek();
    if (c !== undefined && /[0-9.]/.test(c)) {
      const start = this.pos;
      while (!this.atEnd() && /[0-9.]/.test(this.peek()!)) this.pos++;
      const weight = Number(this.text.slice(start, this.pos));
      if (!Number.isFinite(weight) || weight < 0) {
        this.pos = start;
        this.fail("bad weight");
      }
      this.ws();
      this.expect("*");
      this.ws();
      return { weight, tree: this.simple() };
    }
    return { weight: 1, tree: this.simple() };
  }

  private simple(): NameTree {
    const c = this.peek();
    switch (c) {
      case "(": {
        if (++this.depth > MAX_NESTING) this.fail(`nesting deeper than ${MAX_NESTING}`);
        this.pos++;
        this.ws();
        const t = this.tree();
        this.ws();
        this.expect(")");
        this.depth--;
        return t;
      }
      case "~":
        this.pos++;
        return { kind: "neg" };
      case "!":
        this.pos++;
        return { kind: "fail" };
      case "$":
        this.pos++;
        return { kind: "empty" };
      case "/":
        return { kind: "leaf", path: this.path(false) as string[] };
      default:
        return this.fail("expected a path, '(', '~', '!' or '$'");
    }
  }

  private path(allowWildcard: boolean): PrefixElem[] {
    if (this.peek() !== "/") this.fail("expected '/'");
    const elems: PrefixElem[] = [];
    while (this.peek() === "/") {
      this.pos++;
      if (allowWildcard && this.peek() === "*") {
        this.pos++;
        elems.push(WILDCARD);
        continue;
      }
      const label = this.label();
      if (label === "") {
        // "/" alone is the empty path; "/a/" is malformed.
        if (elems.length === 0 && !this.isLabelStart()) return elems;
        this.fail("empty path label");
      }
      elems.push(label);
    }
    return elems;
  }

  private isLabelStart(): boolean {
    const c = this.peek();
    return c !== undefined && (LABEL_CHAR.test(c) || c === "\\");
  }

  private label(): string {
    let out = "";
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      if (c === "\\") {
        const hex = this.text.slice(this.pos + 1, this.pos + 4);
        if (!/^x[0-9A-Fa-f]{2}$/.test(hex)) this.fail("bad escape, expected \\xHH");
        out += String.fromCharCode(parseInt(hex.slice(1), 16));
        this.pos += 4;
        continue;
      }
      if (!LABEL_CHAR.test(c)) break;
      out += c;
      this.pos++;
    }
    return out;
  }

  private ws(): void {
    for (;;) {
      const c = this.peek();
      if (c === "#") {
        const eol = this.text.indexOf("\n", this.pos);
        this.pos = eol === -1 ? this.text.length : eol + 1;
      } else if (c !== undefined && /\s/.test(c)) {
        this.pos++;
      } else {
        return;
      }
    }
  }

  private expect(token: string): void {
    if (this.text.startsWith(token, this.pos)) {
      this.pos += token.length;
      return;
    }
    this.fail(`expected '${token}'`);
  }

  private peek(): string | undefined {
    return this.text[this.pos];
  }

  private atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  private fail(what: string): never {
    const near = JSON.stringify(this.text.slice(this.pos, this.pos + 24));
    throw new DtabError(`${what} at offset ${this.pos} near ${near}`, this.pos);
  }
}

export function parseDtab(text: string): Dtab {
  return new Parser(text).dtab().dtab;
}

export function parseDtabSource(text: string): DtabSource {
  return new Parser(text).dtab();
}

export function parsePath(text: string): Path {
  return new Parser(text).pathOnly();
}

function showLabel(label: string): string {
  let out = "";
  for (const ch of label) {
    out += LABEL_CHAR.test(ch) ? ch : `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
  }
  return out;
}

export function showPath(path: readonly PrefixElem[]): string {
  if (path.length === 0) return "/";
  return path.map((e) => "/" + (e === WILDCARD ? "*" : showLabel(e))).join("");
}

export function showTree(tree: NameTree): string {
  switch (tree.kind) {
    case "leaf":
      return showPath(tree.path);
    case "neg":
      return "~";
    case "fail":
      return "!";
    case "empty":
      return "$";
    case "alt":
      return tree.trees.map((t) => (t.kind === "alt" ? `(${showTree(t)})` : showTree(t))).join(" | ");
    case "union":
      return tree.branches
        .map(({ weight, tree: t }) => {
          const inner = t.kind === "alt" || t.kind === "union" ? `(${showTree(t)})` : showTree(t);
          return weight === 1 ? inner : `${showWeight(weight)} * ${inner}`;
        })
        .join(" & ");
  }
}

/**
 * A weight as the parser reads it: plain decimal, never exponent notation
 * (String(1e-7) is "1e-7", which is not a weight).
 */
export function showWeight(weight: number): string {
  const text = String(weight);
  const e = text.indexOf("e");
  if (e === -1) return text;
  const exponent = Number(text.slice(e + 1));
  const mantissa = text.slice(0, e);
  const dot = mantissa.indexOf(".");
  const digits = dot === -1 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  const point = (dot === -1 ? mantissa.length : dot) + exponent;
  if (point <= 0) return `0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + "0".repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

export function showDtab(dtab: Dtab): string {
  return dtab.map((d) => `${showPath(d.prefix)} => ${showTree(d.dst)};`).join("\n");
}
