// Loop prevention: each mesh hop adds itself to Via, and a request that has
// already passed limits.maxHops of them is refused rather than sent round again
// (a dtab that points two names at each other, say).
import type { IncomingHttpHeaders } from "node:http";
import { ProxyError } from "../http/errors";

const VIA_PSEUDONYM = "zt-mesh";
const MINE = `1.1 ${VIA_PSEUDONYM}`;

/** Number of mesh hops recorded in a Via header. */
function meshHops(via: string | string[] | undefined): number {
  if (via === undefined) return 0;
  const text = typeof via === "string" ? via : via.join(",");
  let n = 0;
  let i = text.indexOf(VIA_PSEUDONYM);
  while (i !== -1) {
    n++;
    i = text.indexOf(VIA_PSEUDONYM, i + VIA_PSEUDONYM.length);
  }
  return n;
}

/** Throws the 502 a routing loop gets, if the request has come round too often. */
export function refuseLoop(headers: IncomingHttpHeaders, host: string, maxHops: number): void {
  if (meshHops(headers.via) >= maxHops) {
    throw new ProxyError("loop", `routing loop: request for ${host} has passed ${maxHops} mesh hops`);
  }
}

/** The Via header for the next hop: what came in, and this proxy. */
export function viaForNextHop(via: string | string[] | undefined): string {
  if (via === undefined) return MINE;
  return `${typeof via === "string" ? via : via.join(", ")}, ${MINE}`;
}
