// An HTTP/1.1 Upgrade (WebSocket) is carried as a tunnel to the endpoint whose
// first bytes are the request itself: the app answers 101 (or refuses) on the
// tunnel, and the switched protocol's bytes follow. Only this request's head is
// rewritten on the way: proxy-only fields go, and this hop joins Via.
import type { IncomingMessage } from "node:http";
import { viaForNextHop } from "../routing/loop-prevention";

const DROPPED = new Set(["proxy-connection", "proxy-authorization", "via", "keep-alive"]);

/** The request head to send the app, for `path` on `authority`. */
export function upgradeRequestHead(req: IncomingMessage, authority: string, path: string): Buffer {
  let head = `${req.method ?? "GET"} ${path} HTTP/1.1\r\nhost: ${authority}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === "host" || DROPPED.has(name)) continue;
    head += `${raw[i]!}: ${raw[i + 1]!}\r\n`;
  }
  head += `via: ${viaForNextHop(req.headers.via)}\r\n\r\n`;
  return Buffer.from(head, "latin1");
}
