// Per-request dtab overrides (`l5d-dtab`). Applications repeat the same few
// override strings, so parses are cached; failures are cached too, so a client
// repeating a hostile header costs one parse, not one per request.
import { DtabError, type Dtab, parseDtab } from "./dtab";

export const DTAB_HEADER = "l5d-dtab";

export type DtabHeaderResult = { readonly ok: true; readonly dtab: Dtab } | { readonly ok: false; readonly error: string };

const EMPTY: DtabHeaderResult = { ok: true, dtab: [] };

export class DtabHeaderCache {
  private readonly cache = new Map<string, DtabHeaderResult>();

  constructor(private readonly capacity = 256) {}

  /** Parses one or more l5d-dtab header values (several are joined in order). */
  parse(value: string | readonly string[] | undefined): DtabHeaderResult {
    if (value === undefined) return EMPTY;
    const text = typeof value === "string" ? value : value.join(";");
    if (text.trim() === "") return EMPTY;
    const hit = this.cache.get(text);
    if (hit !== undefined) {
      // Re-insert so the map's order tracks recency (oldest first).
      this.cache.delete(text);
      this.cache.set(text, hit);
      return hit;
    }
    let result: DtabHeaderResult;
    try {
      result = { ok: true, dtab: parseDtab(text) };
    } catch (err) {
      if (!(err instanceof DtabError)) throw err;
      result = { ok: false, error: `bad l5d-dtab header: ${err.message}` };
    }
    if (this.cache.size >= this.capacity) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(text, result);
    return result;
  }
}
