// Experiment: the floor of this architecture in Node. The same two hops as the
// mesh (plain HTTP/1.1 in -> HTTP/2 over mutual TLS 1.3 -> plain HTTP/1.1 to
// the backend), with none of the mesh's routing, metrics, timeouts, retries or
// header rules: just node:http, node:http2 and pipe(). If this chain is far
// from the target, no tuning of the proxy's own code will reach it.
//
//   node --import tsx test/bench/experiments/minimal-chain.ts --backend 127.0.0.3:PORT [--seconds 120]
// prints the outgoing address (http://127.0.0.2:PORT) and keeps running.
import { fork } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { type IncomingHttpHeaders, Agent, createServer, request } from "node:http";
import { connect, createServer as createH2Server, type ClientHttp2Session } from "node:http2";
import { join } from "node:path";
import { connect as tlsConnect, createServer as createTlsServer } from "node:tls";
import { parseArgs } from "node:util";
import { freePort } from "../../support/net";
import { TestPki } from "../../support/pki";

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "te", "upgrade", "proxy-connection"]);

function copyHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) if (!HOP.has(k) && k.charCodeAt(0) !== 58) out[k] = h[k]!;
  return out;
}

function runOut(port: number, peerPort: number, tls: { ca: string; cert: string; key: string }): void {
  let session: ClientHttp2Session | undefined;
  const getSession = (): ClientHttp2Session => {
    if (session === undefined || session.closed || session.destroyed) {
      session = connect(`https://127.0.0.3:${peerPort}`, {
        createConnection: () =>
          tlsConnect({ host: "127.0.0.3", port: peerPort, ca: tls.ca, cert: tls.cert, key: tls.key, servername: "mesh.test.local", ALPNProtocols: ["h2"], minVersion: "TLSv1.3" }),
        settings: { initialWindowSize: 16 << 20 },
      });
      session.on("error", () => undefined);
    }
    return session;
  };
  createServer((req, res) => {
    const h = copyHeaders(req.headers);
    h[":method"] = req.method!;
    h[":path"] = req.url!;
    h[":authority"] = req.headers.host ?? "";
    const s = getSession().request(h, { endStream: true });
    s.on("response", (rh) => {
      const status = Number(rh[":status"]);
      res.writeHead(status, copyHeaders(rh));
      s.pipe(res);
    });
    s.on("error", () => res.destroy());
  }).listen(port, "127.0.0.2");
}

function runIn(port: number, backend: { host: string; port: number }, tls: { ca: string; cert: string; key: string }): void {
  const agent = new Agent({ keepAlive: true, maxFreeSockets: 256 });
  const h2 = createH2Server({ settings: { initialWindowSize: 16 << 20 } });
  h2.on("stream", (stream, headers) => {
    const h = copyHeaders(headers);
    h.host = String(headers[":authority"] ?? "");
    const up = request({ host: backend.host, port: backend.port, method: String(headers[":method"]), path: String(headers[":path"]), headers: h, agent, setHost: false });
    up.on("response", (r) => {
      const rh: Record<string, string | string[] | number> = copyHeaders(r.headers);
      rh[":status"] = r.statusCode ?? 502;
      stream.respond(rh);
      r.pipe(stream);
    });
    up.on("error", () => stream.close());
    up.end();
  });
  const server = createTlsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3", ALPNProtocols: ["h2"] });
  server.on("secureConnection", (socket) => h2.emit("connection", socket));
  server.listen(port, "127.0.0.3");
}

async function main(): Promise<void> {
  const role = process.env.MINIMAL_ROLE;
  if (role !== undefined) {
    const cfg = JSON.parse(process.env.MINIMAL_CFG!) as { out: number; in: number; backend: string; dir: string };
    const tls = { ca: readFileSync(join(cfg.dir, "ca.crt"), "utf8"), cert: readFileSync(join(cfg.dir, "tls.crt"), "utf8"), key: readFileSync(join(cfg.dir, "tls.key"), "utf8") };
    const [bh, bp] = cfg.backend.split(":");
    if (role === "out") runOut(cfg.out, cfg.in, tls);
    else runIn(cfg.in, { host: bh!, port: Number(bp) }, tls);
    return;
  }
  const { values } = parseArgs({ options: { backend: { type: "string" }, seconds: { type: "string", default: "120" } } });
  const pki = await TestPki.create();
  const ca = await pki.ca("ca");
  const leaf = await pki.leaf(ca, { dns: ["mesh.test.local"] });
  const dir = pki.dir;
  await writeFile(join(dir, "ca.crt"), ca.cert);
  await writeFile(join(dir, "tls.crt"), leaf.cert);
  await writeFile(join(dir, "tls.key"), leaf.key);
  const both = ["127.0.0.2", "127.0.0.3"];
  const cfg = { out: await freePort(both), in: await freePort(both), backend: values.backend!, dir };
  const kids = ["out", "in"].map((r) =>
    fork(__filename, [], { env: { ...process.env, MINIMAL_ROLE: r, MINIMAL_CFG: JSON.stringify(cfg) }, execArgv: ["--import", "tsx"] }),
  );
  process.stdout.write(`minimal http://127.0.0.2:${cfg.out} pids ${kids.map((k) => k.pid).join(" ")}\n`);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Number(values.seconds) * 1000);
    process.on("SIGINT", () => {
      clearTimeout(t);
      resolve();
    });
    process.on("SIGTERM", () => {
      clearTimeout(t);
      resolve();
    });
  });
  for (const k of kids) k.kill("SIGTERM");
  await pki.cleanup();
}

void main();
