// Port 9990: read-only operations endpoints. Kubelet probes /admin/ping
// (liveness) and /admin/ready (readiness); Prometheus scrapes /metrics;
// /admin/delegate explains how a name binds; operators open the page at /,
// which polls /admin/summary.json.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import type { LiveConfig } from "../config/live";
import { ERR_HEADER, headerSafe } from "../http/headers";
import { showDtab } from "@zt-mesh/proxy-config";
import { ADMIN_PAGE, ADMIN_PAGE_HEADERS } from "../admin/page";
import type { AdminSummaryJson } from "../admin/summary";
import type { DelegationExplainer } from "../routing/explain";
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
    private readonly explainer: DelegationExplainer,
    private readonly summary: () => AdminSummaryJson,
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
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    switch (path) {
      case "/":
        send(res, 200, ADMIN_PAGE, ADMIN_PAGE_HEADERS);
        return;
      case "/admin/summary.json":
        send(res, 200, JSON.stringify(this.summary()) + "\n", { "content-type": "application/json", "cache-control": "no-store" });
        return;
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
      case "/admin/delegate": {
        this.delegate(res, new URLSearchParams(q === -1 ? "" : url.slice(q + 1)));
        return;
      }
      case "/metrics": {
        const body = await this.metrics.render();
        send(res, 200, body, { "content-type": this.metrics.registry.contentType });
        return;
      }
      default:
        send(res, 404, `no admin page at ${path}; try /, /admin/summary.json, /admin/ping, /admin/ready, /admin/dtab, /admin/delegate, /metrics\n`);
    }
  }

  /** GET /admin/delegate?path=/svc/world[&dtab=<l5d-dtab line>]...[&direction=incoming] */
  private delegate(res: ServerResponse, params: URLSearchParams): void {
    const answer = this.explainer.explainQuery(params);
    if (!answer.ok) {
      const line = headerSafe(answer.error);
      send(res, 400, `${line}\n`, { [ERR_HEADER]: line });
      return;
    }
    send(res, 200, JSON.stringify(answer.explanation, null, 2) + "\n", { "content-type": "application/json" });
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
