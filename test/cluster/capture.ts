// A packet capture on the links between the emulated nodes (the bridge every
// node's veth is attached to), and the checks the walkthrough makes on it:
// mesh traffic between nodes is TLS records only, and no application bytes
// cross in clear.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { BRIDGE } from "./hosts";

const run = promisify(execFile);

export interface Capture {
  stop(): Promise<void>;
  readonly file: string;
}

export async function startCapture(file: string): Promise<Capture> {
  const child: ChildProcess = spawn("tcpdump", ["-i", BRIDGE, "-U", "-s", "0", "-w", file, "tcp"], { stdio: ["ignore", "ignore", "pipe"] });
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

async function count(file: string, filter: string): Promise<number> {
  const { stdout } = await run("tshark", ["-n", "-r", file, "-Y", filter, "-T", "fields", "-e", "frame.number"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.split("\n").filter((l) => l.trim() !== "").length;
}

export async function analyse(file: string, meshPort: number, secrets: readonly string[]): Promise<CaptureReport> {
  // Decode the mesh port as TLS whatever tshark would guess.
  const port = `tcp.port == ${meshPort}`;
  const raw = await readFile(file);
  return {
    meshSegments: await count(file, `${port} && tcp.len > 0`),
    tlsRecords: await count(file, `${port} && tls.record.content_type == 23`),
    // Segments inside a TLS record that spans several carry no tls layer of
    // their own; tshark marks them reassembled_in, so they are not counted.
    nonTlsMeshSegments: await count(file, `${port} && tcp.len > 0 && !tls && !tcp.reassembled_in`),
    plaintextHttp: await count(file, "http"),
    clearTextHits: secrets.filter((s) => raw.includes(Buffer.from(s))),
  };
}
