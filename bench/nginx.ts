// nginx in three roles, each its own instance (one master, one worker), so the
// CPU and memory of each proxy can be read separately:
//   backend  - the server behind all three paths: static bodies of 0 B, 1 KiB, 64 KiB
//   ref-out  - the reference chain's outgoing proxy: plain HTTP/1.1 in, HTTPS to ref-in
//              with a client certificate, server certificate verified against the mesh
//              CA and the mesh identity, TLS 1.3, keep-alive upstream connections
//   ref-in   - the reference chain's incoming proxy: TLS 1.3 with a required client
//              certificate from the mesh CA whose subject is the mesh identity, plain
//              HTTP/1.1 keep-alive to the backend
import { mkdir, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { httpGet } from "../test/support/net";
import { type Started, startDaemon, stop, trackExtraPid, untrackExtraPid } from "./children";
import { withChildren } from "./procstat";

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly identity: string;
}

export interface NginxInstance {
  readonly name: string;
  readonly started: Started;
  /** Master and worker pids, read once the workers are up. */
  readonly pids: readonly number[];
  readonly statusUrl?: { host: string; port: number; path: string };
}

function common(dir: string, name: string): string {
  return `
worker_processes 1;
daemon off;
master_process on;
user root;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}.error.log`)} warn;
events { worker_connections 4096; multi_accept on; }
`;
}

function httpCommon(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  return `
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server_tokens off;
`;
}

/** A pool of keep-alive connections to one upstream server. */
function upstream(name: string, server: string): string {
  return `
  upstream ${name} {
    server ${server};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
  }`;
}

export function backendConfig(dir: string, ip: string, port: number, root: string): string {
  return `${common(dir, "backend")}
http {
${httpCommon(dir, "backend")}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  etag off;
  server {
    listen ${ip}:${port};
    root ${root};
    location / { }
  }
}
`;
}

export function refOutConfig(dir: string, ip: string, port: number, peer: string, tls: TlsFiles): string {
  return `${common(dir, "ref-out")}
http {
${httpCommon(dir, "ref-out")}
${upstream("ref_in", peer)}
  server {
    listen ${ip}:${port};
    location / {
      proxy_pass https://ref_in;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${tls.cert};
      proxy_ssl_certificate_key ${tls.key};
      proxy_ssl_trusted_certificate ${tls.ca};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_name ${tls.identity};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      # A client that leaves mid-response (wrk and oha do, at their deadline)
      # would otherwise cost the upstream connection and a new handshake; the
      # mesh cancels only the stream and keeps its connection.
      proxy_ignore_client_abort on;
      proxy_buffer_size 16k;
      proxy_buffers 16 16k;
    }
  }
}
`;
}

export function refInConfig(dir: string, ip: string, port: number, statusPort: number, backend: string, tls: TlsFiles): string {
  return `${common(dir, "ref-in")}
http {
${httpCommon(dir, "ref-in")}
${upstream("backend", backend)}
  server {
    listen ${ip}:${port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_client_certificate ${tls.ca};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_session_cache shared:ref_in:1m;
    # The mesh identity: nginx checks the chain; the subject names the identity.
    if ($ssl_client_s_dn != "CN=${tls.identity}") { return 403; }
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffer_size 16k;
      proxy_buffers 16 16k;
    }
  }
  # Connection counter: each accepted connection on the TLS port is one handshake.
  server {
    listen ${ip}:${statusPort};
    location = /status { stub_status; }
  }
}
`;
}

/** Starts nginx with `config`, waits for its worker, and checks it answers on ip:port. */
export async function startNginx(
  nginx: string,
  dir: string,
  name: string,
  config: string,
  probe: { ip: string; port: number },
  statusUrl?: { host: string; port: number; path: string },
): Promise<NginxInstance> {
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) await mkdir(join(dir, `${name}-tmp`, sub), { recursive: true });
  const confPath = join(dir, `${name}.conf`);
  await writeFile(confPath, config);
  // nginx reads NGINX from its environment as inherited listening sockets.
  const env = { ...process.env };
  delete env.NGINX;
  const started = startDaemon(nginx, ["-e", join(dir, `${name}.error.log`), "-p", dir, "-c", confPath], join(dir, `${name}.log`), { env });
  const deadline = Date.now() + 10_000;
  let pids: number[] = [started.pid];
  for (;;) {
    if (started.child.exitCode !== null) throw new Error(`nginx ${name} exited with ${started.child.exitCode}; see ${dir}/${name}.error.log`);
    pids = withChildren(started.pid);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(probe.port, probe.ip, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok && pids.length > 1) break;
    if (Date.now() > deadline) throw new Error(`nginx ${name} did not start listening on ${probe.ip}:${probe.port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const p of pids.slice(1)) trackExtraPid(p);
  return statusUrl === undefined ? { name, started, pids } : { name, started, pids, statusUrl };
}

export async function stopNginx(n: NginxInstance): Promise<void> {
  // SIGQUIT: graceful shutdown, the master waits for its workers.
  await stop(n.started, "SIGQUIT", 5000);
  for (const p of n.pids.slice(1)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // exited with its master, as expected
    }
    untrackExtraPid(p);
  }
}

/**
 * Connections accepted so far by an nginx with a stub_status location. The count
 * is the instance's, so it includes each status request's own connection: two
 * readings differ by one more than the TLS connections accepted between them.
 */
export async function nginxAccepts(n: NginxInstance): Promise<number> {
  if (n.statusUrl === undefined) throw new Error(`nginx ${n.name} has no status page`);
  const body = (await httpGet(n.statusUrl.host, n.statusUrl.port, n.statusUrl.path)).body;
  // "Active connections: 1 \nserver accepts handled requests\n 12 12 345 \n..."
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(body);
  if (m === null) throw new Error(`unexpected stub_status page: ${body.slice(0, 200)}`);
  return Number(m[1]);
}
