// Shared by the reliability tests and the soak: a backend that records every
// request it receives (to prove a POST was never replayed), a relay that can cut
// a link, and a load generator that keeps the outcome of every request.
import { Agent, type IncomingMessage, type Server, type ServerResponse, createServer, request } from "node:http";
import { type Server as NetServer, type Socket, connect as netConnect, createServer as createNetServer } from "node:net";

// ---------------------------------------------------------------- backend

/**
 * An app that records the x-req-id of every request it is handed, by method,
 * and answers with its own name. `kill()` drops it with its connections (a
 * crashed pod); `start()` brings it back on the same address.
 */
export class LedgerBackend {
  readonly seen = new Map<string, number>();
  received = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly name: string,
    readonly ip: string,
    readonly port: number,
    private readonly delayMs = 5,
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.ip, () => resolve());
    });
    this.server = server;
  }

  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise((r) => server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Request ids that reached this backend more than once. */
  duplicates(): string[] {
    return [...this.seen].filter(([, n]) => n > 1).map(([id]) => id);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const id = req.headers["x-req-id"];
    if (typeof id === "string") this.seen.set(id, (this.seen.get(id) ?? 0) + 1);
    this.received++;
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.length));
    req.on("end", () => {
      setTimeout(() => {
        res.writeHead(200, { "content-type": "text/plain", "x-served-by": this.name });
        res.end(`${this.name} ${req.method} ${n}`);
      }, this.delayMs);
    });
  }
}

// ---------------------------------------------------------------- load

export interface Outcome {
  readonly id: string;
  readonly method: string;
  readonly status: number;
  readonly error?: string;
  readonly servedBy?: string;
  readonly l5dErr?: string;
  readonly at: number;
  readonly ms: number;
}

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  /** Absolute URI the app asks its proxy for, e.g. http://ledger/. */
  readonly url: string;
  readonly concurrency: number;
  /** Every n-th request is a POST with a body; the rest are GETs. 0: GETs only. */
  readonly postEvery?: number;
  /** Hard bounds, whatever the test does. */
  readonly maxRequests?: number;
  readonly maxMs?: number;
  readonly localAddress?: string;
}

/** Closed-loop load: `concurrency` workers, each sending its next request when the last one ends. */
export class Load {
  readonly outcomes: Outcome[] = [];
  private stopped = false;
  private seq = 0;
  private readonly agent: Agent;
  private readonly workers: Promise<void>[] = [];
  private readonly started = Date.now();
  private readonly tag = Math.random().toString(36).slice(2, 8);

  constructor(private readonly opts: LoadOptions) {
    this.agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
    for (let i = 0; i < opts.concurrency; i++) this.workers.push(this.worker());
  }

  async stop(): Promise<Outcome[]> {
    this.stopped = true;
    await Promise.all(this.workers);
    this.agent.destroy();
    return this.outcomes;
  }

  failed(method?: string): Outcome[] {
    return this.outcomes.filter((o) => o.status !== 200 && (method === undefined || o.method === method));
  }

  count(method?: string): number {
    return this.outcomes.filter((o) => method === undefined || o.method === method).length;
  }

  private async worker(): Promise<void> {
    const maxRequests = this.opts.maxRequests ?? 200_000;
    const maxMs = this.opts.maxMs ?? 120_000;
    while (!this.stopped && this.seq < maxRequests && Date.now() - this.started < maxMs) {
      const n = ++this.seq;
      const post = this.opts.postEvery !== undefined && this.opts.postEvery > 0 && n % this.opts.postEvery === 0;
      this.outcomes.push(await this.one(`${this.tag}-${n}`, post ? "POST" : "GET"));
    }
  }

  private one(id: string, method: string): Promise<Outcome> {
    const t0 = Date.now();
    const { host: authority } = new URL(this.opts.url);
    return new Promise((resolve) => {
      const body = method === "POST" ? `order ${id}` : undefined;
      const req = request(
        {
          host: this.opts.host,
          port: this.opts.port,
          path: this.opts.url,
          method,
          agent: this.agent,
          localAddress: this.opts.localAddress,
          headers: {
            host: authority,
            "x-req-id": id,
            ...(body === undefined ? {} : { "content-type": "text/plain", "content-length": Buffer.byteLength(body) }),
          },
        },
        (res) => {
          res.resume();
          res.on("end", () =>
            resolve({
              id,
              method,
              status: res.statusCode ?? 0,
              servedBy: res.headers["x-served-by"] as string | undefined,
              l5dErr: res.headers["l5d-err"] as string | undefined,
              at: t0,
              ms: Date.now() - t0,
            }),
          );
          res.on("error", (e) => resolve({ id, method, status: 0, error: e.message, at: t0, ms: Date.now() - t0 }));
        },
      );
      req.setTimeout(60_000, () => req.destroy(new Error("client timeout")));
      req.on("error", (e) => resolve({ id, method, status: 0, error: e.message, at: t0, ms: Date.now() - t0 }));
      req.end(body);
    });
  }
}

/** A one-line summary of failures for assertion messages. */
export function describeFailures(outcomes: readonly Outcome[]): string {
  const byReason = new Map<string, number>();
  for (const o of outcomes) {
    if (o.status === 200) continue;
    const k = `${o.method} ${o.status} ${o.l5dErr ?? o.error ?? ""}`.slice(0, 160);
    byReason.set(k, (byReason.get(k) ?? 0) + 1);
  }
  return [...byReason].map(([k, n]) => `${n} x ${k}`).join("; ");
}

// ---------------------------------------------------------------- link

/**
 * A TCP relay standing for the network link to a node: peers dial the relay's
 * address, which forwards to the node. `cut()` blackholes it as a pulled cable
 * or a partition does: open connections stay open but nothing crosses, and new
 * connections are accepted by nobody (they hang until the dialler gives up).
 * `restore()` lets new connections through again; connections caught in the
 * cut stay silent for good, as when a node comes back with its connection
 * state lost: only their owner's own liveness checks can tell.
 */
export class LinkRelay {
  private readonly server: NetServer;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | undefined; dead: boolean }>();
  private isCut = false;
  accepted = 0;

  constructor(
    readonly ip: string,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    this.server = createNetServer((client) => {
      this.accepted++;
      const pair: { client: Socket; upstream: Socket | undefined; dead: boolean } = { client, upstream: undefined, dead: this.isCut };
      this.pairs.add(pair);
      client.on("error", () => undefined);
      client.once("close", () => {
        pair.upstream?.destroy();
        this.pairs.delete(pair);
      });
      if (this.isCut) return; // held open, never answered
      const upstream = netConnect(this.target);
      pair.upstream = upstream;
      upstream.on("error", () => client.destroy());
      upstream.once("close", () => client.destroy());
      client.on("data", (c: Buffer) => {
        if (!pair.dead) upstream.write(c);
      });
      upstream.on("data", (c: Buffer) => {
        if (!pair.dead) client.write(c);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, this.ip, () => resolve());
    });
  }

  cut(): void {
    this.isCut = true;
    for (const p of this.pairs) p.dead = true;
  }

  restore(): void {
    this.isCut = false;
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    await new Promise((r) => this.server.close(r));
  }
}
