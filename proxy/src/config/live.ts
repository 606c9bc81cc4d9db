// The configuration in force, replaced as a whole when the file is reloaded so
// a request sees one consistent version. Dtabs are parsed here once, not per
// request.
import { BlockList, isIPv4 } from "node:net";
import { type Dtab, parseDtab } from "@zt-mesh/proxy-config";
import type { ProxyConfig } from "@zt-mesh/proxy-config";

export interface LiveSettings {
  readonly config: ProxyConfig;
  readonly outgoingDtab: Dtab;
  readonly incomingDtab: Dtab;
  /** Sources allowed to send l5d-dtab on the outgoing listener. */
  readonly dtabOverrideFrom: BlockList;
}

export function compileSettings(config: ProxyConfig, extraTrusted: readonly string[] = []): LiveSettings {
  const trusted = new BlockList();
  for (const cidr of config.outgoing.dtabOverrideFrom) {
    const [net, bits] = cidr.split("/");
    trusted.addSubnet(net!, Number(bits), isIPv4(net!) ? "ipv4" : "ipv6");
  }
  for (const addr of extraTrusted) trusted.addAddress(addr, isIPv4(addr) ? "ipv4" : "ipv6");
  return {
    config,
    outgoingDtab: parseDtab(config.outgoing.dtab),
    incomingDtab: parseDtab(config.incoming.dtab),
    dtabOverrideFrom: trusted,
  };
}

export class LiveConfig {
  constructor(public current: LiveSettings) {}
}

/** Whether an address (as node reports it, possibly IPv4-mapped) is in the list. */
export function addressIn(list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const mapped = address.startsWith("::ffff:") ? address.slice(7) : address;
  return list.check(mapped, isIPv4(mapped) ? "ipv4" : "ipv6");
}
