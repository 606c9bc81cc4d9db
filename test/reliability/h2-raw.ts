// Just enough HTTP/2 framing to send what a well-behaved client library will
// not: streams past the server's limit, header blocks past its limit, endless
// CONTINUATION frames. Header blocks use HPACK literals only (no Huffman, no
// dynamic table), which every decoder must accept.
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { IDENTITY } from "../support/mesh";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const GOAWAY = 0x7;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, "latin1");
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0)), bytes]);
}

/** GET `path` on authority `world`, plus literal extra headers. */
export function requestBlock(path: string, extra: readonly [string, string][] = []): Buffer {
  const parts: Buffer[] = [
    Buffer.from([0x82, 0x86]), // :method GET, :scheme http (static table)
    Buffer.from([0x04]), // :path, literal without indexing, indexed name
    hpackString(path),
    Buffer.from([0x01]), // :authority
    hpackString("world"),
  ];
  for (const [name, value] of extra) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

export interface H2Tally {
  /** Response HEADERS frames, by stream: the header block as latin1 (statuses show as digits). */
  readonly responses: Map<number, string>;
  /** RST_STREAM error codes received, by code. */
  readonly resets: Map<number, number>;
  goaway?: number;
  closed: boolean;
  bytes: number;
}

/** A TLS connection speaking raw HTTP/2 frames, tallying what the server sends back. */
export class RawH2 {
  readonly tally: H2Tally = { responses: new Map(), resets: new Map(), closed: false, bytes: 0 };
  private buf = Buffer.alloc(0);
  private readonly done: Promise<void>;

  private constructor(readonly socket: TLSSocket) {
    this.done = new Promise((resolve) => {
      socket.on("close", () => {
        this.tally.closed = true;
        resolve();
      });
    });
    socket.on("error", () => undefined);
    socket.on("data", (c: Buffer) => this.onData(c));
  }

  static connect(host: string, port: number, tls: { ca: string; cert: string; key: string }): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host, port, ...tls, servername: IDENTITY, ALPNProtocols: ["h2"] }, () => {
        socket.off("error", reject);
        const conn = new RawH2(socket);
        socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
        resolve(conn);
      });
      socket.once("error", reject);
    });
  }

  write(data: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  /** Resolves when the server closes, or after `ms`. */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(c: Buffer): void {
    this.tally.bytes += c.length;
    this.buf = Buffer.concat([this.buf, c]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (type === SETTINGS && (flags & 1) === 0) this.write(frame(SETTINGS, 1, 0));
      else if (type === HEADERS) this.tally.responses.set(stream, payload.toString("latin1"));
      else if (type === RST_STREAM) {
        const code = payload.readUInt32BE(0);
        this.tally.resets.set(code, (this.tally.resets.get(code) ?? 0) + 1);
      } else if (type === GOAWAY) this.tally.goaway = payload.readUInt32BE(4);
    }
  }
}
