// zt-mesh: a zero-trust, per-node service mesh. Reads this stack's config,
// deploys the mesh, exports what a user needs to try it.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { loadSettings } from "./components/settings";
import { ZtMesh } from "./components/zt-mesh";

const MESH_NAME = "zt-mesh";
const settings = loadSettings(new pulumi.Config(), MESH_NAME);

// An explicit provider so Secrets and ConfigMaps are updated in place: the
// proxies reload their mounted certificates and config live, and the default
// (replace on change) would delete the objects running pods mount.
const provider = new k8s.Provider("zt-mesh-kubernetes", {
  ...(settings.kubeContext ? { context: settings.kubeContext } : {}),
  enableSecretMutable: true,
  enableConfigMapMutable: true,
});

const ztMesh = new ZtMesh(MESH_NAME, settings, { providers: { kubernetes: provider } });

export const namespace = ztMesh.namespace;
/** Every CA certificate the mesh trusts (PEM); public. */
export const caCertificate = ztMesh.caCertificate;
/** When the mesh certificate expires (RFC 3339); `pulumi up` re-issues it certEarlyRenewalHours before. */
export const meshCertificateExpiry = ztMesh.meshCertificateExpiry;
/** Shell commands that show the mesh working: `pulumi stack output walkthrough`. */
export const walkthrough = ztMesh.walkthrough;
/** The mesh certificate, to check a node's 4141 with curl (public). */
export const meshClientCertificate = ztMesh.pki.certificatePem;
/** Its private key: secret, shown only by `pulumi stack output --show-secrets meshClientKey`. */
export const meshClientKey = pulumi.secret(ztMesh.pki.privateKeyPem);
