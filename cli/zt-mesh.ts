// `zt-mesh check`: the health of a deployed mesh, one line a check, with a hint
// for each that fails; the exit status says whether all passed.
//
//   zt-mesh check [--kubeconfig <file>] [--context <name>] [--namespace <ns>] [--production]
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { runChecks } from "./check/mesh-checks";
import { formatResults } from "./check/result";

const USAGE = "usage: zt-mesh check [--kubeconfig <file>] [--context <name>] [--namespace <ns>] [--production]";

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        kubeconfig: { type: "string" },
        context: { type: "string" },
        namespace: { type: "string", default: "default" },
        production: { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals[0] !== "check" || positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    return values.help === true ? 0 : 2;
  }
  const kc = new KubeConfig();
  try {
    if (values.kubeconfig !== undefined) kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
    if (values.context !== undefined) kc.setCurrentContext(values.context);
  } catch (err) {
    process.stderr.write(`cannot load the kubeconfig: ${(err as Error).message}\n`);
    return 2;
  }
  const results = await runChecks(kc, { namespace: values.namespace, production: values.production });
  process.stdout.write(`${formatResults(results)}\n`);
  const failures = results.filter((r) => !r.ok).length;
  process.stdout.write(failures === 0 ? `all ${results.length} checks passed\n` : `${failures} of ${results.length} checks failed\n`);
  return failures === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`zt-mesh check failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
