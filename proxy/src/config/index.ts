// The config API the Pulumi components import from the proxy.
export { configSchema, DEFAULT_DTAB, type ProxyConfig, type ProxyConfigInput } from "./schema";
export { ConfigError, parseConfig, parseConfigText, loadConfigFile, renderConfig } from "./validate";
