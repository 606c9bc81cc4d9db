// Port 9990: read-only operations endpoints. Kubelet probes /admin/ping
// (liveness) and /admin/ready (readiness); Prometheus scrapes /metrics.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import type { LiveConfig } from "../config/live";
import { showDtab } from "../routing/dtab";
import type { MeshMetrics } from "../telemetry/metrics";
import { answerClientError, listen } from "./server-util";

export interface AdminState {
  /** undefined when ready; otherwise what the proxy is still waiting for. */
  notReadyReason(): string | undefined;
}

export class AdminListener {
  readonly server: Server;

  constructor(
    private readonly live: LiveConfig,
    private readonly metrics: MeshMetrics,
    private readonly state: AdminState,
  ) {
    this.server = createServer(
      { maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000, connectionsCheckingInterval: 1000 },
      (req, res) => {
        void this.handle(req, res);
      },
    );
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
  }

  listen(ip: string, port: number): Promise<number> {
    return listen(this.server, ip, port);
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "the admin interface is read-only\n", { allow: "GET, HEAD" });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    switch (path) {
      case "/admin/ping":
        send(res, 200, "pong");
        return;
      case "/admin/ready": {
        const reason = this.state.notReadyReason();
        if (reason === undefined) send(res, 200, "ready\n");
        else send(res, 503, `not ready: ${reason}\n`);
        return;
      }
      case "/admin/dtab": {
        const { outgoingDtab, incomingDtab } = this.live.current;
        const body = JSON.stringify({ outgoing: showDtab(outgoingDtab), incoming: showDtab(incomingDtab) }, null, 2);
        send(res, 200, body + "\n", { "content-type": "application/json" });
        return;
      }
      case "/metrics": {
        const body = await this.metrics.render();
        send(res, 200, body, { "content-type": this.metrics.registry.contentType });
        return;
      }
      default:
        send(res, 404, `no admin page at ${path}; try /admin/ping, /admin/ready, /admin/dtab, /metrics\n`);
    }
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
