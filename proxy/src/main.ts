#!/usr/bin/env node
// The proxy process: `node dist/main.js --config <file>`. Node identity comes
// from the downward API environment (NODE_NAME, HOST_IP); the config file and
// the certificate files are reloaded live; SIGTERM drains in-flight requests.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { ConfigError, loadConfigFile } from "@zt-mesh/proxy-config";
import { startProxy } from "./proxy";
import { createLogger, errorMessage } from "./telemetry/log";
import { watchFiles } from "./util/file-watch";

const USAGE = "usage: node dist/main.js --config <file> [--node-name <name>]";

async function main(): Promise<number> {
  const log = createLogger("info");
  let args;
  try {
    args = parseArgs({
      options: { config: { type: "string" }, "node-name": { type: "string" }, help: { type: "boolean" } },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.help === true || args.config === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return args.help === true ? 0 : 2;
  }
  const configPath = args.config;
  let config;
  try {
    config = await loadConfigFile(configPath);
  } catch (err) {
    log.error("config_invalid", { path: configPath, error: errorMessage(err) });
    return 1;
  }
  log.setLevel(config.log.level);
  const nodeName = args["node-name"] ?? process.env.NODE_NAME ?? hostname();

  let proxy;
  try {
    proxy = await startProxy({ config, nodeName, hostIp: process.env.HOST_IP, log });
  } catch (err) {
    log.error("start_failed", { error: errorMessage(err) });
    return 1;
  }

  const configWatch = watchFiles([configPath], config.tls.reloadIntervalMs, () => {
    loadConfigFile(configPath).then(
      (next) => {
        const restart = proxy.applyConfig(next);
        proxy.metrics.reloads.labels("config", "applied").inc();
        log.info("config_reloaded", { path: configPath });
        if (restart.length > 0) log.warn("config_needs_restart", { keys: restart.join(", "), running: "the values it started with" });
      },
      (err: unknown) => {
        proxy.metrics.reloads.labels("config", "rejected").inc();
        const msg = err instanceof ConfigError ? err.message : errorMessage(err);
        log.error("config_reload_rejected", { path: configPath, error: msg, keeping: "previous config" });
      },
    );
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info("signal", { signal });
      configWatch.close();
      proxy.shutdown().then(
        () => resolve(0),
        (err: unknown) => {
          log.error("shutdown_failed", { error: errorMessage(err) });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

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
