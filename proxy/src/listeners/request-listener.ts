// What the two request listeners share: binding their port, counting what they
// have in flight, and a drain that stops taking requests, lets those in flight
// finish until the deadline, then closes what is left.
import type { Server } from "node:net";
import type { Admission } from "./admission";
import { type ConnectionTracker, listen } from "./server-util";

export abstract class RequestListener {
  abstract readonly server: Server;
  protected abstract readonly connections: ConnectionTracker;
  protected abstract readonly admission: Admission;
  protected draining = false;

  listen(ip: string, port: number): Promise<number> {
    return listen(this.server, ip, port);
  }

  get inFlight(): number {
    return this.admission.inFlight;
  }

  async drain(deadline: number): Promise<void> {
    this.draining = true;
    this.stopAccepting();
    await this.connections.waitIdle(() => this.admission.inFlight === 0, deadline);
    this.closeRemaining();
  }

  /** Closes the port and tells open connections to finish (GOAWAY, or close after the response). */
  protected abstract stopAccepting(): void;
  /** Closes the connections still open at the deadline. */
  protected abstract closeRemaining(): void;
}
