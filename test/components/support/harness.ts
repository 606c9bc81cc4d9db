// Runs a Pulumi program against pulumi.runtime.setMocks and records what the
// engine would have been asked to do: every registration with its inputs as sent
// (secrets still in their envelopes), its provider, its additionalSecretOutputs
// and its replacementTrigger, and every component's registered outputs.
//
// Two things the mock monitor leaves out are done here the way the engine does
// them: outputs listed in additionalSecretOutputs come back secret, and fake
// providers answer with plausible values (PEM blocks, expiry times, random ids
// that change exactly when their keepers change).
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import * as runtimeSettings from "@pulumi/pulumi/runtime/settings";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";

export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent: string;
  readonly custom: boolean;
  /** Inputs as serialized for the engine: secrets are `{ [specialSigKey]: specialSecretSig, value }`. */
  readonly raw: Record<string, unknown>;
  /** The same inputs with every secret envelope unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** URNs this registration waits for (explicit dependsOn and inputs from other resources). */
  readonly dependencies: readonly string[];
  /** Provider reference (`urn::id`), empty for the default provider. */
  readonly provider: string;
  readonly additionalSecretOutputs: readonly string[];
  /** The serialized replacementTrigger option, or undefined when none was set. */
  readonly replacementTrigger: unknown;
  /** What the (fake) provider returned, secrets unwrapped. */
  readonly state: Record<string, unknown>;
  /** What a component passed to registerOutputs, serialized (secrets in envelopes). */
  outputs?: Record<string, unknown>;
}

export interface Run<T> {
  readonly result: T;
  readonly registrations: readonly Registration[];
}

/** A fixed "now", so expiry times are reproducible. */
export const MOCK_NOW = Date.UTC(2030, 0, 1);

export function isSecretEnvelope(value: unknown): value is { value: unknown } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[specialSigKey] === specialSecretSig
  );
}

export function unwrapSecrets(value: unknown): unknown {
  if (isSecretEnvelope(value)) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/** Paths (a.b.0.c) of every string matching `pattern` that is not inside a secret envelope. */
export function plainMatches(value: unknown, pattern: RegExp, path = ""): string[] {
  if (isSecretEnvelope(value)) return [];
  if (typeof value === "string") return pattern.test(value) ? [path || "(value)"] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainMatches(v, pattern, `${path}.${i}`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => plainMatches(v, pattern, path ? `${path}.${k}` : k));
  }
  return [];
}

function pem(label: string, seed: string): string {
  const body = Buffer.from(`mock ${label} for ${seed}`).toString("base64");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function hoursFromNow(hours: unknown): string {
  return new Date(MOCK_NOW + Number(hours) * 3_600_000).toISOString().replace(/\.000Z$/, "Z");
}

function fakeState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const plain = unwrapSecrets(inputs) as Record<string, unknown>;
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return {
        ...inputs,
        privateKeyPem: pem("EC PRIVATE KEY", name),
        privateKeyPemPkcs8: pem("PRIVATE KEY", name),
        privateKeyOpenssh: pem("OPENSSH PRIVATE KEY", name),
        publicKeyPem: pem("PUBLIC KEY", name),
      };
    case "tls:index/selfSignedCert:SelfSignedCert":
      return {
        ...inputs,
        certPem: pem("CERTIFICATE", name),
        validityStartTime: hoursFromNow(0),
        validityEndTime: hoursFromNow(plain["validityPeriodHours"]),
      };
    case "tls:index/certRequest:CertRequest":
      return { ...inputs, certRequestPem: pem("CERTIFICATE REQUEST", `${name} ${sha256(JSON.stringify(plain))}`) };
    case "tls:index/locallySignedCert:LocallySignedCert":
      return {
        ...inputs,
        // Depends on who signed it, as a real certificate does.
        certPem: pem("CERTIFICATE", `${name} signed by ${sha256(String(plain["caCertPem"]))}`),
        validityStartTime: hoursFromNow(0),
        validityEndTime: hoursFromNow(plain["validityPeriodHours"]),
      };
    case "random:index/randomId:RandomId": {
      // A real RandomId is replaced, with a new value, exactly when a keeper changes.
      const hex = sha256(JSON.stringify(plain["keepers"] ?? {})).slice(0, 2 * Number(plain["byteLength"]));
      return { ...inputs, hex, b64Std: Buffer.from(hex, "hex").toString("base64"), dec: BigInt(`0x${hex}`).toString() };
    }
    default:
      return { ...inputs };
  }
}

let recording: Registration[] = [];
let patched = false;

type Callback = (err: unknown, response: unknown) => void;
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getDependenciesList(): string[];
  getObject(): Struct | undefined;
  getAdditionalsecretoutputsList(): string[];
  getReplacementTrigger(): { toJavaScript(): unknown } | undefined;
}
interface RegisterResponse {
  getUrn(): string;
  getObject(): Struct | undefined;
  setObject(value: Struct): void;
}
interface OutputsRequest {
  getUrn(): string;
  getOutputs(): Struct | undefined;
}

function patchMonitor(): void {
  if (patched) return;
  patched = true;
  const proto = MockMonitor.prototype as unknown as {
    registerResource(req: RegisterRequest, callback: Callback): Promise<void>;
    registerResourceOutputs(req: OutputsRequest, callback: Callback): void;
  };
  const register = proto.registerResource;
  proto.registerResource = function (this: MockMonitor, req: RegisterRequest, callback: Callback) {
    return register.call(this, req, (err, response) => {
      if (!err && response) {
        const resp = response as RegisterResponse;
        const secretOutputs = req.getAdditionalsecretoutputsList();
        const state = (resp.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
        const returned = unwrapSecrets(state) as Record<string, unknown>;
        for (const key of secretOutputs) {
          if (key in state && !isSecretEnvelope(state[key])) {
            state[key] = { [specialSigKey]: specialSecretSig, value: state[key] } as never;
          }
        }
        resp.setObject(Struct.fromJavaScript(state as never));
        const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
        recording.push({
          urn: resp.getUrn(),
          type: req.getType(),
          name: req.getName(),
          parent: req.getParent(),
          custom: req.getCustom(),
          raw,
          inputs: unwrapSecrets(raw) as Record<string, unknown>,
          state: returned,
          dependencies: req.getDependenciesList(),
          provider: req.getProvider(),
          additionalSecretOutputs: secretOutputs,
          replacementTrigger: req.getReplacementTrigger()?.toJavaScript(),
        });
      }
      callback(err, response);
    });
  };
  const registerOutputs = proto.registerResourceOutputs;
  proto.registerResourceOutputs = function (this: MockMonitor, req: OutputsRequest, callback: Callback) {
    const found = recording.find((r) => r.urn === req.getUrn());
    if (found) found.outputs = (req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
    return registerOutputs.call(this, req, callback);
  };
}

const waitForRPCs = (runtimeSettings as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs;

/**
 * Runs `program` as one `pulumi up` (not a preview) of stack `stack`, and
 * returns what it returned plus every registration, once all have settled.
 */
export async function run<T>(program: () => T | Promise<T>, stack = "test"): Promise<Run<T>> {
  patchMonitor();
  recording = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({ id: `${args.name}-id`, state: fakeState(args.type, args.name, args.inputs) }),
      call: (args) => args.inputs,
    },
    "zt-mesh",
    stack,
    false,
  );
  const result = await program();
  // Registrations chain on each other's outputs; drain until nothing new starts.
  let seen = -1;
  while (seen !== recording.length) {
    seen = recording.length;
    await waitForRPCs();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { result, registrations: recording };
}

/** The value of an Output, as a test sees it after `pulumi up`. */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}
