// The proxy's configuration, as both sides of the mesh see it: the Pulumi
// program renders the ConfigMap through this schema, and the proxy parses its
// file through it, so a config the proxy would refuse is refused at preview.
export {
  type Dentry,
  type Dtab,
  DtabError,
  type DtabSource,
  MAX_DENTRIES,
  MAX_NESTING,
  type NameTree,
  type Path,
  type PrefixElem,
  WILDCARD,
  type WeightedTree,
  parseDtab,
  parseDtabSource,
  parsePath,
  showDtab,
  showPath,
  showTree,
  showWeight,
} from "./dtab";
export { unknownNameProblem } from "./dtab-names";
export { K8S_NAMER_ID, MESH_NAMERS, SYSTEM_NAMES, type SystemName } from "./namers";
export { configReference, configReferenceMarkdown } from "./reference";
export type { IdentityServiceConfig, IdentityServiceConfigInput } from "./identity-service-schema";
export type { ProxyConfig, ProxyConfigInput } from "./schema";
export {
  ConfigError,
  type ConfigIssue,
  loadConfigFile,
  loadIdentityServiceConfigFile,
  parseConfig,
  parseConfigText,
  parseIdentityServiceConfig,
  renderConfig,
} from "./validate";
