// Test certificates made with the openssl CLI: a mesh CA and certificates that
// are right, expired, from another CA, or carry the wrong identity. `openssl ca`
// is used for leaves because it accepts explicit start and end dates.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends KeyPair {
  readonly name: string;
  readonly dir: string;
}

export interface LeafOptions {
  /** DNS subjectAltNames; none means no subjectAltName extension at all. */
  readonly dns: readonly string[];
  /** Subject CN; default: the first DNS name. */
  readonly cn?: string;
  /** openssl date, e.g. 20200101000000Z; default: an hour ago. */
  readonly start?: string;
  /** default: a year from now. */
  readonly end?: string;
}

function opensslDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
}

export class TestPki {
  private serial = 1;
  private constructor(readonly dir: string) {}

  static async create(): Promise<TestPki> {
    return new TestPki(await mkdtemp(join(tmpdir(), "zt-mesh-pki-")));
  }

  async ca(name: string): Promise<TestCa> {
    const dir = join(this.dir, name);
    await mkdir(join(dir, "newcerts"), { recursive: true });
    await writeFile(join(dir, "index.txt"), "");
    await writeFile(join(dir, "serial"), "1000\n");
    await writeFile(
      join(dir, "ca.cnf"),
      [
        "[ ca ]",
        "default_ca = mesh_ca",
        "[ mesh_ca ]",
        `dir = ${dir}`,
        `database = ${dir}/index.txt`,
        `new_certs_dir = ${dir}/newcerts`,
        `serial = ${dir}/serial`,
        "default_md = sha256",
        "policy = any",
        "unique_subject = no",
        "copy_extensions = none",
        "[ any ]",
        "commonName = supplied",
        "",
      ].join("\n"),
    );
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"), "-days", "30", "-subj", `/CN=${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return {
      name,
      dir,
      cert: await readFile(join(dir, "ca.crt"), "utf8"),
      key: await readFile(join(dir, "ca.key"), "utf8"),
    };
  }

  /** A certificate for both TLS server and client use, signed by `ca`. */
  async leaf(ca: TestCa, opts: LeafOptions): Promise<KeyPair> {
    const id = `leaf-${this.serial++}`;
    const base = join(ca.dir, id);
    await run("openssl", [
      "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${opts.cn ?? opts.dns[0] ?? id}`,
    ]);
    const ext = [
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage = serverAuth,clientAuth",
      ...(opts.dns.length === 0 ? [] : [`subjectAltName = ${opts.dns.map((d) => `DNS:${d}`).join(",")}`]),
      "",
    ].join("\n");
    await writeFile(`${base}.ext`, ext);
    const now = Date.now();
    await run("openssl", [
      "ca", "-batch", "-notext", "-config", join(ca.dir, "ca.cnf"),
      "-cert", join(ca.dir, "ca.crt"), "-keyfile", join(ca.dir, "ca.key"),
      "-in", `${base}.csr`, "-out", `${base}.crt`, "-extfile", `${base}.ext`,
      "-startdate", opts.start ?? opensslDate(new Date(now - 3600_000)),
      "-enddate", opts.end ?? opensslDate(new Date(now + 365 * 86400_000)),
    ]);
    return { cert: await readFile(`${base}.crt`, "utf8"), key: await readFile(`${base}.key`, "utf8") };
  }

  /** An intermediate CA signed by `anchor`, as the identity service's issuer is. */
  async intermediate(anchor: TestCa, name: string): Promise<KeyPair> {
    const base = join(anchor.dir, name);
    await run("openssl", [
      "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${name}`,
    ]);
    await writeFile(`${base}.ext`, "basicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n");
    const now = Date.now();
    await run("openssl", [
      "ca", "-batch", "-notext", "-config", join(anchor.dir, "ca.cnf"),
      "-cert", join(anchor.dir, "ca.crt"), "-keyfile", join(anchor.dir, "ca.key"),
      "-in", `${base}.csr`, "-out", `${base}.crt`, "-extfile", `${base}.ext`,
      "-startdate", opensslDate(new Date(now - 3600_000)), "-enddate", opensslDate(new Date(now + 7 * 86400_000)),
    ]);
    return { cert: await readFile(`${base}.crt`, "utf8"), key: await readFile(`${base}.key`, "utf8") };
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
