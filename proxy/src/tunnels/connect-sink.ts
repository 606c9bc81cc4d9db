// The answer to an HTTP/1.1 CONNECT or Upgrade on 4140, written on the
// client's raw connection: "200 Connection established" (for a CONNECT; an
// Upgrade's answer is the app's own, from the tunnel) and then the tunnel's
// bytes, or the proxy's own error (with l5d-err) and the connection closed.
import type { OutgoingHttpHeaders } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import type { ProxyError } from "../http/errors";
import type { AbortWatcher, ResponseSink } from "../http/exchange";
import { ERR_HEADER, headerSafe } from "../http/headers";

function head(status: number, headers: OutgoingHttpHeaders): string {
  let text = `HTTP/1.1 ${status} ${status === 200 ? "Connection established" : (STATUS_CODES[status] ?? "Unknown")}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${headerSafe(String(v))}\r\n`;
  }
  return `${text}\r\n`;
}

export class ConnectSink implements ResponseSink {
  private sent = false;
  private watcher: AbortWatcher | undefined;

  constructor(
    private readonly socket: Socket,
    /** Whether an established tunnel is announced with 200 (CONNECT), or the app speaks first (Upgrade). */
    private readonly announce = true,
  ) {
    socket.once("close", () => {
      // Once the tunnel is up, its relay owns the connection's ending.
      if (!this.sent) this.watcher?.clientGone();
    });
  }

  respond(status: number, headers: OutgoingHttpHeaders): Writable | undefined {
    const { socket } = this;
    if (socket.destroyed || this.sent) return undefined;
    this.sent = true;
    if (status === 200) {
      if (this.announce) socket.write(head(200, {}));
      return socket;
    }
    // Any other answer ends the connection after its body.
    socket.write(head(status, { ...headers, connection: "close" }));
    return socket;
  }

  fail(err: ProxyError): void {
    const { socket } = this;
    if (socket.destroyed) return;
    if (this.sent) {
      socket.resetAndDestroy();
      return;
    }
    this.sent = true;
    const line = headerSafe(err.message);
    const body = `${line}\n`;
    socket.end(
      head(err.status, {
        [ERR_HEADER]: line,
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        connection: "close",
      }) + body,
    );
  }

  abort(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  get headersSent(): boolean {
    return this.sent;
  }

  watch(watcher: AbortWatcher): void {
    this.watcher = watcher;
  }
}
