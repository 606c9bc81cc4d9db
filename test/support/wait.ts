// Waiting in tests: poll a condition until it holds, and fail naming what was
// awaited (with the last error the check threw, and any detail the caller adds).

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Between checks; a check against a real API server wants a longer one. */
  readonly intervalMs?: number;
  /** Appended to the failure, e.g. the tail of a process's output. */
  readonly detail?: () => string;
}

/** Polls `check` until it holds; fails naming `what` after the timeout (15 s unless told). */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, opts: WaitOptions = {}): Promise<void> {
  const { timeoutMs = 15_000, intervalMs = 50, detail } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const cause = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}${detail?.() ?? ""}`);
    }
    await sleep(intervalMs);
  }
}
