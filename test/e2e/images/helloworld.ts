// Stands in for the classic buoyantio/helloworld image on the emulated nodes:
// same flags (-addr=:7777 -text=Hello -target=world), and with -target it
// calls http://<target>/ through $http_proxy, as the demo's hello does through
// its node's mesh proxy. Answers "<text> <target's answer>", so hello says
// "Hello world".
import { createServer, request } from "node:http";

function flag(name: string, fallback: string): string {
  const prefix = `-${name}=`;
  const arg = process.argv.find((a) => a.startsWith(prefix) || a.startsWith(`-${prefix}`));
  return arg === undefined ? fallback : arg.slice(arg.indexOf("=") + 1);
}

const addr = flag("addr", ":7777");
const text = flag("text", "Hello");
const target = flag("target", "");
const colon = addr.lastIndexOf(":");
const host = addr.slice(0, colon) || "0.0.0.0";
const port = Number(addr.slice(colon + 1));

const proxy = process.env.http_proxy ?? process.env.HTTP_PROXY ?? "";

function callTarget(): Promise<string> {
  return new Promise((resolve, reject) => {
    const via = proxy === "" ? undefined : new URL(proxy.includes("://") ? proxy : `http://${proxy}`);
    const req = request(
      via === undefined
        ? { host: target, port: 80, path: "/" }
        : { host: via.hostname, port: Number(via.port || 80), path: `http://${target}/`, headers: { host: target } },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`${res.statusCode} ${body.trim()}`))));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

createServer((req, res) => {
  req.resume();
  if (target === "") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(text);
    return;
  }
  callTarget().then(
    (answer) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`${text} ${answer}`);
    },
    (err: Error) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`${text}: ${target} failed: ${err.message}\n`);
    },
  );
}).listen(port, host, () => process.stdout.write(JSON.stringify({ event: "listening", addr, text, target }) + "\n"));

process.on("SIGTERM", () => process.exit(0));
