// Experiment helper: starts the backend and the two mesh proxies exactly as
// run.ts does, prints their addresses, and keeps them up for --seconds (default
// 300) or until Ctrl-C, so they can be poked with wrk, curl and /metrics by hand.
//
//   node --import tsx test/bench/experiments/hold.ts [--seconds 300] [--proxy-node-args="..."]
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../../support/net";
import { TestPki } from "../../support/pki";
import { killAllSync } from "../children";
import { BenchMesh } from "../mesh-procs";
import { backendConfig, startNginx, stopNginx } from "../nginx";
import { SIZES, SIZE_BYTES } from "../results";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "300" }, "proxy-node-args": { type: "string" }, nginx: { type: "string", default: "/usr/sbin/nginx" } },
  });
  process.once("exit", killAllSync);
  const dir = await mkdtemp(join(tmpdir(), "zt-mesh-hold-"));
  const pki = await TestPki.create();
  const ca = await pki.ca("mesh-ca");
  const leaf = await pki.leaf(ca, { dns: ["mesh.test.local"] });
  const tls = { ca: join(dir, "ca.crt"), cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), identity: "mesh.test.local" };
  await writeFile(tls.ca, ca.cert);
  await writeFile(tls.cert, leaf.cert);
  await writeFile(tls.key, leaf.key);
  const www = join(dir, "www");
  await mkdir(www);
  for (const s of SIZES) await writeFile(join(www, s), Buffer.alloc(SIZE_BYTES[s], "x"));
  const both = ["127.0.0.2", "127.0.0.3"];
  const ports = { backend: await freePort(both), out: await freePort(both), in: await freePort(both), admin: await freePort(both) };
  const backend = await startNginx(values.nginx!, dir, "backend", backendConfig(dir, "127.0.0.3", ports.backend, www), { ip: "127.0.0.3", port: ports.backend });
  const mesh = await BenchMesh.start({
    dir,
    ports: { outgoing: ports.out, incoming: ports.in, admin: ports.admin },
    backend: { ip: "127.0.0.3", node: "b", port: ports.backend },
    tls,
    nodeArgs: values["proxy-node-args"]?.split(/\s+/).filter((a) => a !== "") ?? [],
  });
  const pids = mesh.procs.map((p) => `${p.name}=${p.started.pid}`).join(" ");
  process.stdout.write(
    `backend http://127.0.0.3:${ports.backend}\nmesh http://127.0.0.2:${ports.out} (Host: bench)\n` +
      `admin http://127.0.0.2:${ports.admin}/metrics http://127.0.0.3:${ports.admin}/metrics\npids ${pids}\ndir ${dir}\n`,
  );
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Number(values.seconds) * 1000);
    // `on`, not `once`: a second Ctrl-C (or one forwarded by `timeout`) must not
    // kill the process halfway through its clean-up.
    process.on("SIGINT", () => {
      clearTimeout(t);
      resolve();
    });
  });
  await mesh.close();
  await stopNginx(backend);
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    killAllSync();
    process.exit(1);
  },
);
