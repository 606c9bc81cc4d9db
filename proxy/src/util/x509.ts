// @peculiar/x509, loaded the one way it works here: its dependency injection
// needs the Reflect metadata polyfill before the library is evaluated, and its
// WebCrypto is node's own. Everything that builds CSRs or certificates imports
// the library through this module.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** A WebCrypto key, as node types it (the project has no DOM types). */
export type CryptoKey = webcrypto.CryptoKey;

/** ECDSA P-256 with SHA-256: the one key and signature type of the mesh. */
export const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

