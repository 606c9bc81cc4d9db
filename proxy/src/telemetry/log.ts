// One JSON object per line with a stable `event` field, so logs can be queried
// without parsing prose. Callers pass only fields that are safe to print: never
// keys, certificates or whole header maps.

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  setLevel(level: LogLevel): void;
}

export function createLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  let threshold = RANK[level];
  const emit = (lvl: LogLevel, event: string, fields?: LogFields): void => {
    if (RANK[lvl] < threshold) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, event, ...fields }) + "\n");
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    enabled: (lvl) => RANK[lvl] >= threshold,
    setLevel: (lvl) => {
      threshold = RANK[lvl];
    },
  };
}

/** The message of an error, first line only: stack traces never reach logs or the wire. */
export function errorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const nl = msg.indexOf("\n");
  return nl === -1 ? msg : msg.slice(0, nl);
}
