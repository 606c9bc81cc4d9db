// Per-request dtab overrides (`l5d-dtab`). Applications repeat the same few
// override strings, so parses are cached; failures are cached too, so a client
// repeating a hostile header costs one parse, not one per request.
//
// A request may carry several l5d-dtab lines (repeated HTTP/1.1 headers,
// repeated HTTP/2 fields). As in linkerd 1, each is parsed on its own (a `#`
// comment ends with its line) and they are layered in order: a later line's
// dentries take precedence over an earlier one's.
import type { IncomingHttpHeaders } from "node:http";
import { type Dentry, type Dtab, DtabError, type DtabSource, MAX_DENTRIES, parseDtabSource } from "@zt-mesh/proxy-config";
import { MESH_NAMERS, unknownNameProblem } from "@zt-mesh/proxy-config";

export const DTAB_HEADER = "l5d-dtab";

export type DtabHeaderResult = { readonly ok: true; readonly dtab: Dtab } | { readonly ok: false; readonly error: string };

const EMPTY: DtabHeaderResult = { ok: true, dtab: [] };

export class DtabHeaderCache {
  private readonly cache = new Map<string, DtabHeaderResult>();

  constructor(
    private readonly capacity = 256,
    private readonly namerIds: readonly string[] = MESH_NAMERS,
  ) {}

  /** Parses the l5d-dtab value, or its lines in order when there were several. */
  parse(value: string | readonly string[] | undefined): DtabHeaderResult {
    if (value === undefined) return EMPTY;
    // Header values never hold a line feed, so it separates lines unambiguously.
    const key = typeof value === "string" ? value : value.length === 1 ? value[0]! : value.join("\n");
    if (key.trim() === "") return EMPTY;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      // Re-insert so the map's order tracks recency (oldest first).
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const result = this.parseLines(typeof value === "string" ? [value] : value);
    if (this.cache.size >= this.capacity) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, result);
    return result;
  }

  private parseLines(lines: readonly string[]): DtabHeaderResult {
    const sources: DtabSource[] = [];
    const dtab: Dentry[] = [];
    for (let i = 0; i < lines.length; i++) {
      try {
        const source = parseDtabSource(lines[i]!);
        sources.push(source);
        dtab.push(...source.dtab);
      } catch (err) {
        if (!(err instanceof DtabError)) throw err;
        return { ok: false, error: `bad l5d-dtab header${lineOf(i, lines.length)}: ${err.message}` };
      }
      if (dtab.length > MAX_DENTRIES) return { ok: false, error: `bad l5d-dtab header: more than ${MAX_DENTRIES} dentries` };
    }
    for (let i = 0; i < sources.length; i++) {
      const problem = unknownNameProblem(sources[i]!, this.namerIds, [dtab]);
      if (problem !== undefined) return { ok: false, error: `bad l5d-dtab header${lineOf(i, lines.length)}: ${problem}` };
    }
    return { ok: true, dtab };
  }
}

function lineOf(i: number, lines: number): string {
  return lines === 1 ? "" : ` (line ${i + 1} of ${lines})`;
}

/**
 * node:http and node:http2 join repeated header lines with ", ", which would
 * run a `#` comment on one line into the next. When a request repeats
 * l5d-dtab, this puts its lines back, in order, from the raw header list (so a
 * forwarded request carries them as separate lines too). Only requests that
 * carry l5d-dtab pay for the scan.
 */
export function splitDtabLines(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
  if (headers[DTAB_HEADER] === undefined) return;
  let lines: string[] | undefined;
  let first: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== DTAB_HEADER.length || name.toLowerCase() !== DTAB_HEADER) continue;
    const value = rawHeaders[i + 1]!;
    if (first === undefined) first = value;
    else (lines ??= [first]).push(value);
  }
  if (lines !== undefined) headers[DTAB_HEADER] = lines;
}
