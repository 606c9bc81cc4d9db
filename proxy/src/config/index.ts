// The config API the Pulumi components import from the proxy.
export { configSchema, DEFAULT_DTAB, type ProxyConfig, type ProxyConfigInput } from "./schema";
export { ConfigError, type ConfigIssue, parseConfig, parseConfigText, loadConfigFile, renderConfig } from "./validate";
