// The config API the Pulumi components import from the proxy.
export type { ProxyConfig, ProxyConfigInput } from "./schema";
export { ConfigError, type ConfigIssue, parseConfigText, renderConfig } from "./validate";
