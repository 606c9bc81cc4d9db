// Relays an established tunnel's bytes both ways. Each direction is piped, so
// a slow reader slows its writer (memory stays bounded by the streams' buffers)
// and ends on its own (half-close). A break on either side resets both; a
// tunnel with no byte either way for the idle timeout is reset too.
import type { TunnelEnd } from "./tunnel-end";

export interface TunnelTotals {
  /** Bytes from the client to the upstream, and back. */
  readonly fromClient: number;
  readonly toClient: number;
  /** closed: both directions ended cleanly; broken: a side reset or failed; idle: no bytes for the idle timeout. */
  readonly ending: "closed" | "broken" | "idle";
  /** What broke it, for the log. */
  readonly cause?: string;
}

class Direction {
  bytes = 0;
  ended = false;
}

export function relayTunnel(client: TunnelEnd, upstream: TunnelEnd, idleTimeoutMs: number, done: (totals: TunnelTotals) => void): void {
  const up = new Direction();
  const down = new Direction();
  let lastActivity = Date.now();
  let finished = false;
  let closedSides = 0;

  const finish = (ending: TunnelTotals["ending"], cause?: string): void => {
    if (finished) return;
    finished = true;
    clearInterval(idleCheck);
    if (ending !== "closed") {
      client.reset();
      upstream.reset();
    }
    done({ fromClient: up.bytes, toClient: down.bytes, ending, ...(cause === undefined ? {} : { cause }) });
  };

  const pipe = (from: TunnelEnd, to: TunnelEnd, dir: Direction, name: string): void => {
    from.stream.on("data", (chunk: Buffer) => {
      dir.bytes += chunk.length;
      lastActivity = Date.now();
    });
    from.stream.pipe(to.stream, { end: false });
    from.stream.once("end", () => {
      if (!from.endedCleanly()) {
        finish("broken", `the ${name} reset its side`);
        return;
      }
      dir.ended = true;
      to.stream.end();
    });
  };

  for (const [side, name] of [
    [client, "client"],
    [upstream, "upstream"],
  ] as const) {
    side.stream.on("error", (err: Error) => finish("broken", `the ${name} failed: ${err.message}`));
    side.stream.once("close", () => {
      closedSides++;
      if (!(up.ended && down.ended)) finish("broken", `the ${name} closed before both directions ended`);
      else if (closedSides === 2) finish("closed");
    });
  }
  pipe(client, upstream, up, "client");
  pipe(upstream, client, down, "upstream");

  const idleCheck = setInterval(() => {
    if (Date.now() - lastActivity >= idleTimeoutMs) finish("idle");
  }, Math.max(10, Math.min(idleTimeoutMs / 4, 1000)));
  idleCheck.unref();
}
