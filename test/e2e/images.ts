// What each container image runs on an emulated node. There is no container
// runtime here, so an image is a program on this machine: the mesh proxy as
// built from proxy/, and local stand-ins for the demo's images.
import { join } from "node:path";
import { PROXY_COMMAND } from "../../components/proxy-daemonset";

const ROOT = join(__dirname, "..", "..");
const NODE = process.execPath;

export interface ImageProgram {
  /** The image's entrypoint; container `command` replaces it, `args` follow it. */
  readonly entrypoint: readonly string[];
  readonly cwd: string;
}

const PROGRAMS: Record<string, ImageProgram> = {
  // Dockerfile: WORKDIR /app/proxy (here proxy/, where dist/ is built), ENTRYPOINT PROXY_COMMAND.
  "ghcr.io/zt-mesh/proxy": { entrypoint: onThisMachine(PROXY_COMMAND), cwd: join(ROOT, "proxy") },
  "buoyantio/helloworld": {
    entrypoint: [NODE, "--import", "tsx", join(ROOT, "test", "e2e", "images", "helloworld.ts")],
    cwd: ROOT,
  },
};

/** A command whose program is the image's `node` runs this checkout's Node (the Dockerfile pins the same version). */
export function onThisMachine(command: readonly string[]): string[] {
  const [program, ...rest] = command;
  return program === "node" ? [NODE, ...rest] : [...command];
}

/** The image name without tag or digest. */
export function imageRepository(image: string): string {
  const at = image.indexOf("@");
  const noDigest = at === -1 ? image : image.slice(0, at);
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

export function programFor(image: string): ImageProgram | undefined {
  return PROGRAMS[imageRepository(image)];
}
