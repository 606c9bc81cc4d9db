// The little of the Kubernetes API the proxy needs: credentials from a
// kubeconfig or the pod's service account, and list-then-watch of one
// collection over node:http(s), as JSON lines.
//
// It replaces @kubernetes/client-node, whose generated API graph cost each
// proxy about 80 MiB of RSS and 28 MiB of heap for two list calls and two
// watches. Supported credentials: bearer token (inline, tokenFile, or the
// service-account token, re-read before each request because it rotates) and
// client certificates; exec and auth-provider plugins (and basic auth) are
// refused with a message saying so.
import { readFile } from "node:fs/promises";
import { Agent as HttpAgent, type IncomingMessage, type ClientRequest, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { dirname, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { parse as parseYaml } from "yaml";

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Lists of a whole cluster's EndpointSlices are large, but not unbounded. */
const MAX_LIST_BYTES = 256 * 1024 * 1024;
/** One watch event (one object) at most. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;
/** The server ends each watch after this; it is then re-opened from the last resourceVersion. */
const WATCH_SECONDS = 300;

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface KubeAccess {
  readonly server: URL;
  readonly agent: HttpAgent;
  /** The Authorization header value, if any; read fresh for each request. */
  authorization(): Promise<string | undefined>;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function named(list: unknown, name: string, field: string): Json {
  const entry = (Array.isArray(list) ? list : []).map(obj).find((e) => e.name === name);
  if (entry === undefined) throw new KubeApiError(`kubeconfig names ${field} ${JSON.stringify(name)}, which it does not define`);
  return obj(entry[field]);
}

/** Inline base64 data, or a file (relative to the kubeconfig), or nothing. */
async function material(data: unknown, file: unknown, base: string): Promise<Buffer | undefined> {
  const d = str(data);
  if (d !== undefined) return Buffer.from(d, "base64");
  const f = str(file);
  return f === undefined ? undefined : readFile(resolve(base, f));
}

function bearerFrom(token: string | undefined, tokenFile: string | undefined): () => Promise<string | undefined> {
  if (token !== undefined) {
    const header = `Bearer ${token}`;
    return () => Promise.resolve(header);
  }
  if (tokenFile !== undefined) return async () => `Bearer ${(await readFile(tokenFile, "utf8")).trim()}`;
  return () => Promise.resolve(undefined);
}

/** Access from a kubeconfig file's current context, or in-cluster when `path` is "". */
export async function loadAccess(path: string): Promise<KubeAccess> {
  if (path === "") return inClusterAccess();
  const base = dirname(resolve(path));
  const config = obj(parseYaml(await readFile(path, "utf8")));
  const contextName = str(config["current-context"]);
  if (contextName === undefined) throw new KubeApiError(`kubeconfig ${path} has no current-context`);
  const context = named(config.contexts, contextName, "context");
  const cluster = named(config.clusters, str(context.cluster) ?? "", "cluster");
  const user = context.user === undefined ? {} : named(config.users, str(context.user) ?? "", "user");
  if (user.exec !== undefined || user["auth-provider"] !== undefined || user.username !== undefined) {
    throw new KubeApiError(
      `kubeconfig user ${JSON.stringify(context.user)} uses an exec or auth-provider plugin or basic auth; give the proxy a token or a client certificate`,
    );
  }
  const server = str(cluster.server);
  if (server === undefined) throw new KubeApiError(`kubeconfig cluster ${JSON.stringify(context.cluster)} has no server`);
  const url = new URL(server);
  const tokenFile = str(user.tokenFile);
  const authorization = bearerFrom(str(user.token), tokenFile === undefined ? undefined : resolve(base, tokenFile));
  if (url.protocol === "http:") return { server: url, agent: new HttpAgent({ keepAlive: true }), authorization };
  const agent = new HttpsAgent({
    keepAlive: true,
    ca: await material(cluster["certificate-authority-data"], cluster["certificate-authority"], base),
    cert: await material(user["client-certificate-data"], user["client-certificate"], base),
    key: await material(user["client-key-data"], user["client-key"], base),
    rejectUnauthorized: cluster["insecure-skip-tls-verify"] !== true,
    servername: str(cluster["tls-server-name"]),
  });
  return { server: url, agent, authorization };
}

async function inClusterAccess(): Promise<KubeAccess> {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === "" || port === undefined || port === "") {
    throw new KubeApiError("no kubeconfig given and not in a pod (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  const server = new URL(`https://${host.includes(":") ? `[${host}]` : host}:${port}`);
  const ca = await readFile(`${SERVICE_ACCOUNT}/ca.crt`);
  return {
    server,
    agent: new HttpsAgent({ keepAlive: true, ca }),
    authorization: bearerFrom(undefined, `${SERVICE_ACCOUNT}/token`),
  };
}

/** One GET; resolves with the response once its head arrives. */
async function get(access: KubeAccess, pathAndQuery: string): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  const headers: Record<string, string> = { accept: "application/json" };
  const auth = await access.authorization();
  if (auth !== undefined) headers.authorization = auth;
  const url = new URL(pathAndQuery, access.server);
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  return new Promise((resolvePromise, reject) => {
    const req = send(url, { method: "GET", headers, agent: access.agent }, (res) => resolvePromise({ req, res }));
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new KubeApiError(`no answer from ${url.host} in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

async function readBody(res: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new KubeApiError(`response larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function failure(res: IncomingMessage, what: string): Promise<KubeApiError> {
  const body = await readBody(res, 64 * 1024).catch(() => "");
  const message = str(obj(safeJson(body)).message) ?? (res.statusMessage || "");
  return new KubeApiError(`${what}: HTTP ${res.statusCode} ${message}`.trim(), res.statusCode);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function keyOf(o: unknown): string | undefined {
  const meta = obj(obj(o).metadata);
  const name = str(meta.name);
  return name === undefined ? undefined : `${str(meta.namespace) ?? ""}/${name}`;
}

export interface WatchHandlers {
  upsert(o: unknown): void;
  remove(o: unknown): void;
  /** After each complete list has been applied. */
  listed(): void;
  /** The list or the watch failed; the ListWatch has stopped. */
  error(err: Error): void;
}

/**
 * List, then watch from the list's resourceVersion, re-watching when the server
 * ends a watch and re-listing when the version is too old (410 Gone). A relist
 * removes objects that disappeared meanwhile. Any other failure stops it and is
 * reported once through `error`; start() again to resume.
 */
export class ListWatch {
  private readonly known = new Map<string, unknown>();
  private current: ClientRequest | undefined;
  private running = false;
  private generation = 0;

  constructor(
    private readonly access: KubeAccess,
    private readonly path: string,
    private readonly labelSelector: string | undefined,
    private readonly on: WatchHandlers,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const generation = ++this.generation;
    this.loop(generation).catch((err: unknown) => {
      if (generation !== this.generation || !this.running) return;
      this.running = false;
      this.on.error(err instanceof Error ? err : new Error(String(err)));
    });
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.current?.destroy();
    this.current = undefined;
  }

  private query(extra: string): string {
    const params = [this.labelSelector === undefined ? "" : `labelSelector=${encodeURIComponent(this.labelSelector)}`, extra];
    const q = params.filter((p) => p !== "").join("&");
    return q === "" ? this.path : `${this.path}?${q}`;
  }

  private async loop(generation: number): Promise<void> {
    while (generation === this.generation) {
      let rv = await this.list(generation);
      // Watch until the version expires (then relist) or something fails (then throw).
      for (;;) {
        if (generation !== this.generation) return;
        const next = await this.watch(generation, rv);
        if (next === undefined) break;
        rv = next;
      }
    }
  }

  private async list(generation: number): Promise<string> {
    const { req, res } = await get(this.access, this.query(""));
    this.current = req;
    if (res.statusCode !== 200) throw await failure(res, `list ${this.path}`);
    const body = obj(safeJson(await readBody(res, MAX_LIST_BYTES)));
    if (generation !== this.generation) return "";
    const items = Array.isArray(body.items) ? body.items : [];
    const seen = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      if (key === undefined) continue;
      seen.add(key);
      this.known.set(key, item);
      this.on.upsert(item);
    }
    for (const [key, old] of this.known) {
      if (seen.has(key)) continue;
      this.known.delete(key);
      this.on.remove(old);
    }
    this.on.listed();
    return str(obj(body.metadata).resourceVersion) ?? "";
  }

  /** Resolves with the resourceVersion to watch from next, or undefined to relist. */
  private async watch(generation: number, rv: string): Promise<string | undefined> {
    const { req, res } = await get(
      this.access,
      this.query(`watch=true&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&resourceVersion=${encodeURIComponent(rv)}`),
    );
    this.current = req;
    // The server ends the watch after WATCH_SECONDS; a silent one beyond that is dead.
    req.setTimeout((WATCH_SECONDS + 30) * 1000, () => req.destroy(new KubeApiError(`watch of ${this.path} went silent`)));
    if (res.statusCode === 410) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) throw await failure(res, `watch ${this.path}`);
    const decoder = new StringDecoder("utf8");
    let buffered = "";
    let last = rv;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (generation !== this.generation) return last;
      buffered += decoder.write(chunk);
      let nl = buffered.indexOf("\n");
      while (nl !== -1) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        if (line === "") continue;
        const event = obj(safeJson(line));
        const type = event.type;
        const o = event.object;
        if (type === "ERROR") {
          if (obj(o).code === 410) return undefined;
          throw new KubeApiError(`watch ${this.path}: ${str(obj(o).message) ?? line.slice(0, 200)}`, Number(obj(o).code) || undefined);
        }
        const version = str(obj(obj(o).metadata).resourceVersion);
        if (version !== undefined) last = version;
        const key = keyOf(o);
        if (type === "BOOKMARK" || key === undefined) continue;
        if (type === "DELETED") {
          this.known.delete(key);
          this.on.remove(o);
        } else if (type === "ADDED" || type === "MODIFIED") {
          this.known.set(key, o);
          this.on.upsert(o);
        }
      }
      if (buffered.length > MAX_EVENT_BYTES) throw new KubeApiError(`watch ${this.path}: an event larger than ${MAX_EVENT_BYTES} bytes`);
    }
    // A watch cut by a broken connection ends without 'complete'.
    if (!res.complete) throw new KubeApiError(`watch of ${this.path} was cut off`);
    return last;
  }
}
