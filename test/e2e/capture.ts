// A packet capture on the links between the emulated nodes (the bridge every
// node's veth is attached to), and the checks the walkthrough makes on it:
// mesh traffic between nodes is TLS records only, and no application bytes
// cross in clear.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { BRIDGE, GATEWAY } from "./hosts";

const run = promisify(execFile);

export interface Capture {
  stop(): Promise<void>;
  readonly file: string;
}

export async function startCapture(file: string): Promise<Capture> {
  // --immediate-mode: without it the kernel hands packets over in blocks, and
  // a short walkthrough ends (SIGINT) before the first block is delivered.
  // Only node-to-node traffic: the control plane and the node agents live on
  // the bridge's own address (GATEWAY), and an agent's probes, node-local
  // under a real kubelet, cross the bridge here.
  const filter = `tcp and not host ${GATEWAY}`;
  const child: ChildProcess = spawn("tcpdump", ["-i", BRIDGE, "--immediate-mode", "-U", "-s", "0", "-w", file, filter], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  // tcpdump says "listening on ..." once the capture is live.
  await new Promise<void>((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (c: Buffer) => {
      err += c.toString();
      if (err.includes("listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`tcpdump exited with ${code}: ${err.trim()}`)));
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    file,
    async stop() {
      child.kill("SIGINT");
      await exited;
    },
  };
}

export interface CaptureReport {
  /** TCP segments with payload on the mesh port between nodes. */
  readonly meshSegments: number;
  /** TLS application-data records on the mesh port. */
  readonly tlsRecords: number;
  /** Segments with payload on the mesh port that are not TLS. */
  readonly nonTlsMeshSegments: number;
  /** Packets anywhere on the links that tshark decodes as HTTP (plaintext). */
  readonly plaintextHttp: number;
  /** Application strings found anywhere in the raw capture. */
  readonly clearTextHits: readonly string[];
}

async function count(file: string, meshPort: number, filter: string): Promise<number> {
  // -d: decode the mesh port as TLS even when the capture starts after the
  // handshake (the proxies keep one connection per peer open).
  const args = ["-n", "-r", file, "-d", `tcp.port==${meshPort},tls`, "-Y", filter, "-T", "fields", "-e", "frame.number"];
  const { stdout } = await run("tshark", args, {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.split("\n").filter((l) => l.trim() !== "").length;
}

export async function analyse(file: string, meshPort: number, secrets: readonly string[]): Promise<CaptureReport> {
  const port = `tcp.port == ${meshPort}`;
  const raw = await readFile(file);
  return {
    meshSegments: await count(file, meshPort, `${port} && tcp.len > 0`),
    // TLS 1.3 records after a captured handshake carry their type as opaque_type.
    tlsRecords: await count(file, meshPort, `${port} && (tls.record.content_type == 23 || tls.record.opaque_type == 23)`),
    // Segments inside a TLS record that spans several carry no tls layer of
    // their own; tshark marks them reassembled_in, so they are not counted.
    nonTlsMeshSegments: await count(file, meshPort, `${port} && tcp.len > 0 && !tls && !tcp.reassembled_in`),
    plaintextHttp: await count(file, meshPort, "http"),
    clearTextHits: secrets.filter((s) => raw.includes(Buffer.from(s))),
  };
}
