// A real Kubernetes control plane on this machine: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, built from the upstream Go
// modules (tools/build-kubernetes.sh). Certificates are generated at each
// start. The API server listens on the emulated hosts' bridge, so pods on the
// emulated nodes reach it the way in-cluster clients do.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { GATEWAY } from "./hosts";

const run = promisify(execFile);

export const API_PORT = 6443;
/** Service ClusterIPs come from the other half of the benchmarking range; nothing routes them. */
export const SERVICE_CIDR = "198.19.0.0/24";
const SERVICE_IP = "198.19.0.1";

export interface ControlPlane {
  readonly server: string;
  /** Cluster-admin kubeconfig (client certificate in system:masters). */
  readonly adminKubeconfig: string;
  readonly caCert: string;
  readonly logDir: string;
  stop(): Promise<void>;
}

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

async function openssl(...args: string[]): Promise<void> {
  await run("openssl", args);
}

async function makePki(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const p = (f: string): string => join(dir, f);
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("ca.key"),
    "-out", p("ca.crt"), "-days", "2", "-subj", "/CN=zt-mesh-test-cluster-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const leaf = async (name: string, subj: string, ext: string): Promise<void> => {
    await openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(`${name}.key`),
      "-out", p(`${name}.csr`), "-subj", subj);
    await writeFile(p(`${name}.ext`), ext);
    await openssl("x509", "-req", "-in", p(`${name}.csr`), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
      "-out", p(`${name}.crt`), "-days", "2", "-extfile", p(`${name}.ext`));
  };
  await leaf("apiserver", "/CN=kube-apiserver",
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      `subjectAltName=IP:${GATEWAY},IP:127.0.0.1,IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,` +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n");
  const client = "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  await leaf("admin", "/O=system:masters/CN=admin", client);
  await leaf("controller-manager", "/CN=system:kube-controller-manager", client);
  await leaf("scheduler", "/CN=system:kube-scheduler", client);
  await openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("sa.key"));
}

async function kubeconfig(dir: string, user: string, server: string): Promise<string> {
  const b64 = async (f: string): Promise<string> => (await readFile(join(dir, f))).toString("base64");
  const path = join(dir, `${user}.kubeconfig`);
  await writeFile(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: zt-mesh-test\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${await b64("ca.crt")}`,
      "users:",
      `- name: ${user}\n  user:\n    client-certificate-data: ${await b64(`${user}.crt`)}\n    client-key-data: ${await b64(`${user}.key`)}`,
      "contexts:",
      `- name: zt-mesh-test\n  context:\n    cluster: zt-mesh-test\n    user: ${user}`,
      "current-context: zt-mesh-test",
      "",
    ].join("\n"),
  );
  return path;
}

function start(name: string, bin: string, args: string[], logDir: string): Proc {
  // etcd reads ETCD_* variables as flags; give every component a clean environment.
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
  // The child writes its log file itself: no pipe through this process that
  // could end early or stall when this process is busy.
  const log = openSync(join(logDir, `${name}.log`), "w");
  const child = spawn(bin, args, { env, stdio: ["ignore", log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { name, child, exited };
}

async function stopProc(p: Proc, graceMs = 15_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(timer);
}

async function waitReady(server: string, dir: string, procs: readonly Proc[], timeoutMs: number): Promise<void> {
  const ca = await readFile(join(dir, "ca.crt"));
  const cert = await readFile(join(dir, "admin.crt"));
  const key = await readFile(join(dir, "admin.key"));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited with ${dead.child.exitCode}; see its log`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(`${server}/readyz`, { ca, cert, key }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.setTimeout(2000, () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`kube-apiserver not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function startControlPlane(binDir: string, workDir: string, etcdPorts: readonly [number, number]): Promise<ControlPlane> {
  const pki = join(workDir, "pki");
  const logDir = join(workDir, "logs");
  await mkdir(logDir, { recursive: true });
  await makePki(pki);
  const server = `https://${GATEWAY}:${API_PORT}`;
  const admin = await kubeconfig(pki, "admin", server);
  const cm = await kubeconfig(pki, "controller-manager", server);
  const sched = await kubeconfig(pki, "scheduler", server);
  const f = (n: string): string => join(pki, n);
  const bin = (n: string): string => join(binDir, n);
  const [client, peer] = etcdPorts;
  const procs: Proc[] = [];

  const stop = async (): Promise<void> => {
    // Reverse order: an apiserver that loses etcd first can ignore SIGTERM for minutes.
    for (const p of [...procs].reverse()) await stopProc(p);
  };

  try {
    procs.push(
      start("etcd", bin("etcd"), [
        `--data-dir=${join(workDir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=default=http://127.0.0.1:${peer}`,
        "--unsafe-no-fsync",
      ], logDir),
    );
    procs.push(
      start("kube-apiserver", bin("kube-apiserver"), [
        `--etcd-servers=http://127.0.0.1:${client}`,
        `--bind-address=${GATEWAY}`,
        `--advertise-address=${GATEWAY}`,
        `--secure-port=${API_PORT}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        `--tls-cert-file=${f("apiserver.crt")}`,
        `--tls-private-key-file=${f("apiserver.key")}`,
        `--client-ca-file=${f("ca.crt")}`,
        "--service-account-issuer=https://kubernetes.default.svc",
        `--service-account-key-file=${f("sa.key")}`,
        `--service-account-signing-key-file=${f("sa.key")}`,
        "--api-audiences=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
      ], logDir),
    );
    await waitReady(server, pki, procs, 90_000);
    procs.push(
      start("kube-controller-manager", bin("kube-controller-manager"), [
        `--kubeconfig=${cm}`,
        "--secure-port=0",
        "--leader-elect=false",
        `--root-ca-file=${f("ca.crt")}`,
        `--service-account-private-key-file=${f("sa.key")}`,
        `--cluster-signing-cert-file=${f("ca.crt")}`,
        `--cluster-signing-key-file=${f("ca.key")}`,
        "--use-service-account-credentials=true",
        // Emulated nodes report status every few seconds; notice a dead one quickly.
        "--node-monitor-grace-period=20s",
      ], logDir),
    );
    procs.push(start("kube-scheduler", bin("kube-scheduler"), [`--kubeconfig=${sched}`, "--secure-port=0", "--leader-elect=false"], logDir));
  } catch (err) {
    await stop();
    throw err;
  }
  return { server, adminKubeconfig: admin, caCert: f("ca.crt"), logDir, stop };
}
