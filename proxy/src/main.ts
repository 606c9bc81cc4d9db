#!/usr/bin/env node
// The proxy process: `node dist/main.js --config <file>`. Node identity comes
// from the downward API environment (NODE_NAME, HOST_IP); the config file and
// the certificate files are reloaded live; SIGTERM drains in-flight requests.
import { hostname } from "node:os";
import { ConfigError, loadConfigFile } from "@zt-mesh/proxy-config";
import { startProxy } from "./proxy";
import { createLogger, errorMessage } from "./telemetry/log";
import { watchFiles } from "./util/file-watch";
import { commandLine, runAsProcess, untilSignalled } from "./util/process-main";

const USAGE = "usage: node dist/main.js --config <file> [--node-name <name>]";

async function main(): Promise<number> {
  const log = createLogger("info");
  const args = commandLine(USAGE, { "node-name": { type: "string" } });
  if (typeof args === "number") return args;
  const configPath = args.config;
  let config;
  try {
    config = await loadConfigFile(configPath);
  } catch (err) {
    log.error("config_invalid", { path: configPath, error: errorMessage(err) });
    return 1;
  }
  log.setLevel(config.log.level);
  const named = args.values["node-name"];
  const nodeName = (typeof named === "string" ? named : undefined) ?? process.env.NODE_NAME ?? hostname();

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

  return untilSignalled(log, async () => {
    configWatch.close();
    await proxy.shutdown();
    return 0;
  });
}

runAsProcess(main);
