// What both of the image's programs (the proxy and the identity service) do as
// processes: read `--config <file>` (and their own flags), exit 2 with the usage
// on a bad command line, stop on SIGTERM or SIGINT, and exit 70 on anything
// thrown that nothing caught.
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { type Logger, createLogger, errorMessage } from "../telemetry/log";

/** The parsed flags, or the exit status when the command line is not one to run with. */
export function commandLine<O extends ParseArgsOptionsConfig>(
  usage: string,
  options: O,
): { readonly config: string; readonly values: Record<string, string | boolean | undefined> } | number {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ options: { ...options, config: { type: "string" }, help: { type: "boolean" } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${usage}\n`);
    return 2;
  }
  const config = values["config"];
  if (values["help"] === true || typeof config !== "string") {
    process.stderr.write(`${usage}\n`);
    return values["help"] === true ? 0 : 2;
  }
  const flat: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(values)) if (!Array.isArray(v)) flat[k] = v;
  return { config, values: flat };
}

/** Resolves with the exit status once SIGTERM or SIGINT has run `stop`. */
export function untilSignalled(log: Logger, stop: () => Promise<number>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info("signal", { signal });
      stop().then(resolve, (err: unknown) => {
        log.error("shutdown_failed", { error: errorMessage(err) });
        resolve(1);
      });
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
}

/** Runs `main` as the process: its result is the exit status. */
export function runAsProcess(main: () => Promise<number>): void {
  process.on("uncaughtException", (err) => {
    createLogger("error").error("uncaught_exception", { error: errorMessage(err) });
    process.exit(70);
  });
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      createLogger("error").error("fatal", { error: errorMessage(err) });
      process.exit(70);
    },
  );
}
