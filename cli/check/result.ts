// One check's verdict, as `zt-mesh check` prints it.
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** What was found. */
  readonly detail: string;
  /** What to do about it, when it failed. */
  readonly hint?: string;
}

export function passed(name: string, detail: string): CheckResult {
  return { name, ok: true, detail };
}

export function failed(name: string, detail: string, hint: string): CheckResult {
  return { name, ok: false, detail, hint };
}

/** The lines `zt-mesh check` prints for `results`. */
export function formatResults(results: readonly CheckResult[]): string {
  return results
    .map((r) => `${r.ok ? "✓" : "✗"} ${r.name}: ${r.detail}${r.ok || r.hint === undefined ? "" : `\n    hint: ${r.hint}`}`)
    .join("\n");
}
