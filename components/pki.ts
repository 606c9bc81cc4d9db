// The mesh's certificate authority and the one certificate every proxy presents.
//
// Rotation is driven from stack config, one `pulumi up` per step:
// - Mesh key and certificate: change `certRotation`. It is a keeper of a RandomId,
//   so the RandomId is replaced, and its new value is the `replacementTrigger` of
//   the mesh key, CSR and certificate, so all three are re-issued together.
// - CA: CAs are "generations", each its own key and self-signed certificate, and
//   all of them are in the trust bundle. Add a generation while `caSigner` still
//   names the current one (both trusted), switch `caSigner` to the new one (the
//   mesh certificate is re-signed), then drop the old one. Every step leaves
//   every proxy trusting every certificate in use, so a rollout that is half
//   done never splits the mesh.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";

export interface MeshPkiArgs {
  /** DNS name put in the mesh certificate as its only subjectAltName. */
  readonly identity: string;
  /** Labels of the CA generations to keep; all of them are trusted. */
  readonly caGenerations: readonly string[];
  /**
   * The generation that signs the mesh certificate. May be omitted only while
   * there is one generation: with two, which one signs is the rotation step.
   */
  readonly caSigner?: string;
  readonly caValidityHours: number;
  readonly certValidityHours: number;
  /** Re-issue the certificate on the first `pulumi up` this many hours before it expires. */
  readonly certEarlyRenewalHours: number;
  /** Any change re-issues the mesh key and certificate. */
  readonly certRotation: string;
}

export class PkiArgsError extends Error {
  constructor(
    readonly field: keyof MeshPkiArgs,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "PkiArgsError";
  }
}

const GENERATION = /^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/;

/** Throws PkiArgsError naming the field; runs before any resource is registered. */
export function validatePkiArgs(args: MeshPkiArgs): void {
  if (args.caGenerations.length === 0) {
    throw new PkiArgsError("caGenerations", "at least one CA generation is needed");
  }
  const seen = new Set<string>();
  for (const gen of args.caGenerations) {
    if (!GENERATION.test(gen)) {
      throw new PkiArgsError(
        "caGenerations",
        `"${gen}" is not a valid generation label (lower-case letters, digits and '-', at most 20)`,
      );
    }
    if (seen.has(gen)) throw new PkiArgsError("caGenerations", `"${gen}" is listed twice`);
    seen.add(gen);
  }
  if (args.caSigner === undefined && args.caGenerations.length > 1) {
    // Defaulting to the newest would re-sign the mesh certificate in the same
    // `pulumi up` that first distributes the new CA: proxies that have not yet
    // reloaded the new bundle would reject peers that have, splitting the mesh.
    throw new PkiArgsError(
      "caSigner",
      `must name the signing generation while several are trusted [${args.caGenerations.join(", ")}]; ` +
        "keep the current one until every proxy trusts the new CA, then switch",
    );
  }
  if (args.caSigner !== undefined && !seen.has(args.caSigner)) {
    throw new PkiArgsError(
      "caSigner",
      `"${args.caSigner}" is not one of caGenerations [${args.caGenerations.join(", ")}]`,
    );
  }
  for (const field of ["caValidityHours", "certValidityHours"] as const) {
    if (!Number.isInteger(args[field]) || args[field] < 1) {
      throw new PkiArgsError(field, `must be a positive whole number of hours, got ${args[field]}`);
    }
  }
  if (!Number.isInteger(args.certEarlyRenewalHours) || args.certEarlyRenewalHours < 0) {
    throw new PkiArgsError("certEarlyRenewalHours", `must be zero or more hours, got ${args.certEarlyRenewalHours}`);
  }
  if (args.certEarlyRenewalHours >= args.certValidityHours) {
    throw new PkiArgsError(
      "certEarlyRenewalHours",
      `${args.certEarlyRenewalHours} must be less than certValidityHours (${args.certValidityHours}), ` +
        "or every `pulumi up` would re-issue the certificate",
    );
  }
  if (args.certValidityHours > args.caValidityHours) {
    throw new PkiArgsError(
      "certValidityHours",
      `${args.certValidityHours} outlives the CA (caValidityHours ${args.caValidityHours})`,
    );
  }
}

const KEY = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;

export class MeshPki extends pulumi.ComponentResource {
  readonly identity: string;
  /** Generation that signs the mesh certificate. */
  readonly caSigner: string;
  /** PEM of every trusted CA certificate, in generation order. Public. */
  readonly caBundlePem: pulumi.Output<string>;
  /** The mesh certificate, PEM. Public. */
  readonly certificatePem: pulumi.Output<string>;
  /** RFC 3339 time the mesh certificate expires. */
  readonly certificateExpiry: pulumi.Output<string>;
  /** The mesh private key, PKCS#8 PEM. Always a secret Output. */
  readonly privateKeyPem: pulumi.Output<string>;

  constructor(name: string, args: MeshPkiArgs, opts?: pulumi.ComponentResourceOptions) {
    // Before super(), so bad arguments register nothing at all.
    validatePkiArgs(args);
    super("zt-mesh:index:MeshPki", name, {}, opts);
    this.identity = args.identity;
    this.caSigner = args.caSigner ?? (args.caGenerations[0] as string);

    const cas = args.caGenerations.map((gen) => {
      const key = new tls.PrivateKey(`${name}-ca-${gen}-key`, KEY, { parent: this });
      const cert = new tls.SelfSignedCert(
        `${name}-ca-${gen}-cert`,
        {
          privateKeyPem: key.privateKeyPem,
          isCaCertificate: true,
          // The mesh certificate's authority key id points here, which is how a
          // verifier holding several generations picks the right one.
          setSubjectKeyId: true,
          allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
          validityPeriodHours: args.caValidityHours,
          // Distinct subjects per generation, so a verifier holding both never
          // confuses one CA for the other.
          subject: { commonName: `zt-mesh CA ${gen}`, organization: "zt-mesh", organizationalUnit: args.identity },
        },
        { parent: this },
      );
      return { gen, key, cert };
    });
    const signer = cas.find((ca) => ca.gen === this.caSigner);
    if (signer === undefined) throw new PkiArgsError("caSigner", `no CA generation "${this.caSigner}"`);

    this.caBundlePem = pulumi
      .all(cas.map((ca) => ca.cert.certPem))
      .apply((pems) => pems.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join(""));

    const rotation = new random.RandomId(
      `${name}-mesh-rotation`,
      { byteLength: 8, keepers: { certRotation: args.certRotation } },
      { parent: this },
    );
    // The key has no input a rotation could change, so replacement is forced
    // through the engine; the CSR and certificate get the same trigger so the
    // three are always re-issued as one, whichever the engine diffs first.
    const reissue = { parent: this, replacementTrigger: rotation.hex };

    const meshKey = new tls.PrivateKey(`${name}-mesh-key`, KEY, reissue);
    const csr = new tls.CertRequest(
      `${name}-mesh-csr`,
      {
        privateKeyPem: meshKey.privateKeyPem,
        dnsNames: [args.identity],
        subject: { commonName: args.identity, organization: "zt-mesh" },
      },
      reissue,
    );
    const cert = new tls.LocallySignedCert(
      `${name}-mesh-cert`,
      {
        certRequestPem: csr.certRequestPem,
        caPrivateKeyPem: signer.key.privateKeyPem,
        caCertPem: signer.cert.certPem,
        // One certificate both serves (incoming) and dials (outgoing) peers.
        allowedUses: ["digital_signature", "server_auth", "client_auth"],
        validityPeriodHours: args.certValidityHours,
        earlyRenewalHours: args.certEarlyRenewalHours,
      },
      reissue,
    );

    this.certificatePem = cert.certPem;
    this.certificateExpiry = cert.validityEndTime;
    // The provider already marks it secret; wrapping again keeps it secret even
    // if that provider schema ever changes.
    this.privateKeyPem = pulumi.secret(meshKey.privateKeyPemPkcs8);

    this.registerOutputs({
      caBundlePem: this.caBundlePem,
      certificatePem: this.certificatePem,
      certificateExpiry: this.certificateExpiry,
    });
  }
}
