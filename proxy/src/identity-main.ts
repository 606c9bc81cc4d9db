#!/usr/bin/env node
// The identity service process: `node dist/identity-main.js --config <file>`.
// The issuer files are reloaded live; SIGTERM stops it.
import { AuthenticationV1Api, CoreV1Api } from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { loadIdentityServiceConfigFile } from "@zt-mesh/proxy-config";
import { IssuerStore } from "./identity/issuer-store";
import { IdentityMetrics } from "./identity/metrics";
import { IdentityServer } from "./identity/server";
import { createLogger, errorMessage } from "./telemetry/log";
import { loadKubeConfig } from "./util/kubeconfig";

const USAGE = "usage: node dist/identity-main.js --config <file>";

async function main(): Promise<number> {
  const log = createLogger("info");
  let args;
  try {
    args = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean" } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.help === true || args.config === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return args.help === true ? 0 : 2;
  }
  let server;
  let issuers;
  try {
    const config = await loadIdentityServiceConfigFile(args.config);
    log.setLevel(config.log.level);
    const metrics = new IdentityMetrics();
    issuers = await IssuerStore.open(config.issuer, log, metrics);
    issuers.watchFiles(config.issuer.reloadIntervalMs);
    const kc = loadKubeConfig(config.kubeconfig);
    const kube = { authentication: kc.makeApiClient(AuthenticationV1Api), core: kc.makeApiClient(CoreV1Api) };
    server = await IdentityServer.create(config, issuers, kube, metrics, log);
    const ports = await server.listen();
    log.info("identity_service_started", { ...ports, trustDomain: config.trustDomain, namespace: config.meshNamespace });
  } catch (err) {
    log.error("start_failed", { error: errorMessage(err) });
    return 1;
  }
  const running = server;
  const issuerStore = issuers;
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info("signal", { signal });
      issuerStore.close();
      running.close().then(
        () => resolve(0),
        () => resolve(1),
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
