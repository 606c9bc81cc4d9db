// System names: paths under /$/ that bind without a configured namer, as in
// Finagle (fail, nil, inet, fixedinet) and linkerd 1 (the io.buoyant.* rewriting
// namers). A lookup either ends the resolution (an address, a failure, nothing)
// or rewrites the path, which is then bound again through the dtab.
import { type Path, SYSTEM_NAMES, type SystemName, showPath } from "@zt-mesh/proxy-config";
import type { Resolution } from "./resolve";

export type SystemLookup = Resolution | { readonly kind: "rewrite"; readonly path: Path };

type SystemNamer = (args: Path, whole: Path) => SystemLookup;

/** Where /$/inet/<port> points: the proxy's own host, as Finagle's wildcard address does. */
const LOCALHOST = "127.0.0.1";

const FAIL: SystemLookup = { kind: "fail", reason: "delegated to /$/fail (explicit failure)" };
const NIL: SystemLookup = { kind: "empty", reason: "delegated to /$/nil (binds to nothing)" };

function portOf(label: string | undefined): number | undefined {
  if (label === undefined || !/^[0-9]{1,5}$/.test(label)) return undefined;
  const port = Number(label);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function address(whole: Path, consumed: number, host: string, port: number): SystemLookup {
  return { kind: "bound", dest: { kind: "inet", id: showPath(whole.slice(0, consumed)), host, port } };
}

/** /$/inet/<host>/<port> or /$/inet/<port> (this host); anything after is the residual. */
function inet(namer: string): SystemNamer {
  return (args, whole) => {
    const port = portOf(args[1]);
    if (args[0] !== undefined && port !== undefined) return address(whole, 4, args[0], port);
    const local = portOf(args[0]);
    if (local !== undefined) return address(whole, 3, LOCALHOST, local);
    return { kind: "error", reason: `malformed ${showPath(whole)}: expected /$/${namer}/<host>/<port> or /$/${namer}/<port>` };
  };
}

/** /$/io.buoyant.rinet/<port>/<host>: inet with the port first. */
const rinet: SystemNamer = (args, whole) => {
  const port = portOf(args[0]);
  const host = args[1];
  if (port === undefined || host === undefined) {
    return { kind: "neg", reason: `${showPath(whole)} is not /$/io.buoyant.rinet/<port>/<host>` };
  }
  return address(whole, 4, host, port);
};

// linkerd 1's coarse host pattern: DNS names, IPv4 and IPv6 without brackets.
const HOST = /^[A-Za-z0-9.:-]+$/;
// The port of host:port is a number or a DNS label (a named port), at most 63 characters.
const PORT_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function splitHostPort(label: string): [string, string] | undefined {
  const colon = label.indexOf(":");
  if (colon <= 0 || colon !== label.lastIndexOf(":")) return undefined;
  const port = label.slice(colon + 1);
  return PORT_LABEL.test(port) ? [label.slice(0, colon), port] : undefined;
}

function rewritten(path: Path): SystemLookup {
  return { kind: "rewrite", path };
}

function noMatch(whole: Path, form: string): SystemLookup {
  return { kind: "neg", reason: `${showPath(whole)} does not have the form ${form}` };
}

/** /$/io.buoyant.hostportPfx/<pfx>/<host>:<port>/etc => /<pfx>/<host>/<port>/etc */
const hostportPfx: SystemNamer = (args, whole) => {
  const hp = args[1] === undefined ? undefined : splitHostPort(args[1]);
  if (hp === undefined) return noMatch(whole, "/$/io.buoyant.hostportPfx/<prefix>/<host>:<port>/...");
  return rewritten([args[0]!, hp[0], hp[1], ...args.slice(2)]);
};

/** /$/io.buoyant.porthostPfx/<pfx>/<host>:<port>/etc => /<pfx>/<port>/<host>/etc */
const porthostPfx: SystemNamer = (args, whole) => {
  const hp = args[1] === undefined ? undefined : splitHostPort(args[1]);
  if (hp === undefined) return noMatch(whole, "/$/io.buoyant.porthostPfx/<prefix>/<host>:<port>/...");
  return rewritten([args[0]!, hp[1], hp[0], ...args.slice(2)]);
};

/** /$/io.buoyant.http.domainToPathPfx/<pfx>/foo.example.com/etc => /<pfx>/com/example/foo/etc */
const domainToPathPfx: SystemNamer = (args, whole) => {
  const host = args[1];
  const labels = host !== undefined && HOST.test(host) ? host.split(".").reverse() : undefined;
  // An empty label (a..b, a trailing dot) cannot be written in a dtab, so it cannot match one either.
  if (labels === undefined || labels.includes("")) {
    return noMatch(whole, "/$/io.buoyant.http.domainToPathPfx/<prefix>/<host>/...");
  }
  return rewritten([args[0]!, ...labels, ...args.slice(2)]);
};

/** /$/io.buoyant.http.subdomainOfPfx/example.com/<pfx>/foo.example.com/etc => /<pfx>/foo/etc */
const subdomainOfPfx: SystemNamer = (args, whole) => {
  const [domain, pfx, host] = args;
  const suffix = domain !== undefined && HOST.test(domain) ? `.${domain}` : undefined;
  if (suffix === undefined || pfx === undefined || host === undefined || !HOST.test(host) || !host.endsWith(suffix)) {
    return noMatch(whole, "/$/io.buoyant.http.subdomainOfPfx/<domain>/<prefix>/<host under domain>/...");
  }
  const sub = host.slice(0, host.length - suffix.length);
  if (sub === "") return noMatch(whole, "/$/io.buoyant.http.subdomainOfPfx/<domain>/<prefix>/<host under domain>/...");
  return rewritten([pfx, sub, ...args.slice(3)]);
};

// One implementation for each name the config grammar accepts after /$/.
const IMPLEMENTATIONS: Readonly<Record<SystemName, SystemNamer>> = {
  fail: () => FAIL,
  nil: () => NIL,
  inet: inet("inet"),
  // Finagle's fixedinet caches DNS answers; here both resolve when connecting.
  fixedinet: inet("fixedinet"),
  "io.buoyant.rinet": rinet,
  "io.buoyant.hostportPfx": hostportPfx,
  "io.buoyant.porthostPfx": porthostPfx,
  "io.buoyant.http.domainToPathPfx": domainToPathPfx,
  "io.buoyant.http.subdomainOfPfx": subdomainOfPfx,
};
const NAMERS: ReadonlyMap<string, SystemNamer> = new Map(Object.entries(IMPLEMENTATIONS));

/** Looks up a path that starts with /$/. */
export function lookupSystem(path: Path): SystemLookup {
  const name = path[1];
  const namer = name === undefined ? undefined : NAMERS.get(name);
  if (namer === undefined) {
    return { kind: "error", reason: `unknown system name ${showPath(path.slice(0, 2))} (known: ${SYSTEM_NAMES.join(", ")})` };
  }
  return namer(path.slice(2), path);
}
