// Who may re-route a request with `l5d-dtab`. On 4140 anyone who can reach the
// node's port can send the header, so only the configured sources (and the
// node itself) may; on 4141 the peer has proved it is a mesh proxy, and it
// passes on only what its own policy honoured.
import { type LiveSettings, addressIn } from "../config/live";
import type { ReceivedRequest } from "../http/exchange";

export interface OverridePolicy {
  honours(received: ReceivedRequest, settings: LiveSettings): boolean;
}

export const FROM_TRUSTED_SOURCES: OverridePolicy = {
  honours: (received, settings) => addressIn(settings.dtabOverrideFrom, received.remoteAddress),
};

export const FROM_MESH_PEERS: OverridePolicy = {
  honours: () => true,
};
