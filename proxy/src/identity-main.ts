#!/usr/bin/env node
// The identity service process: `node dist/identity-main.js --config <file>`.
// The issuer files are reloaded live; SIGTERM stops it.
import { AuthenticationV1Api, CoreV1Api } from "@kubernetes/client-node";
import { loadIdentityServiceConfigFile } from "@zt-mesh/proxy-config";
import { IssuerStore } from "./identity/issuer-store";
import { IdentityMetrics } from "./identity/metrics";
import { IdentityServer } from "./identity/server";
import { createLogger, errorMessage } from "./telemetry/log";
import { loadKubeConfig } from "./util/kubeconfig";
import { commandLine, runAsProcess, untilSignalled } from "./util/process-main";

const USAGE = "usage: node dist/identity-main.js --config <file>";

async function main(): Promise<number> {
  const log = createLogger("info");
  const args = commandLine(USAGE, {});
  if (typeof args === "number") return args;
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
  return untilSignalled(log, async () => {
    issuerStore.close();
    await running.close();
    return 0;
  });
}

runAsProcess(main);
