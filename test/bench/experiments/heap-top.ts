// Summarises a sampling heap profile (experiments/heap-sample.cjs): bytes held
// per allocation site, with the two frames above it.
//   node --import tsx test/bench/experiments/heap-top.ts FILE.json [--top 25]
import { readFileSync } from "node:fs";

interface Frame { functionName: string; url: string; lineNumber: number }
interface HeapNode { callFrame: Frame; selfSize: number; children: HeapNode[] }

const name = (f: Frame): string =>
  `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(proxy\/dist|node_modules)\//, "$1/").replace(/^file:\/\//, "")}:${f.lineNumber + 1}`;

const args = process.argv.slice(2);
const ti = args.indexOf("--top");
const top = ti === -1 ? 25 : Number(args.splice(ti, 2)[1]);
for (const file of args) {
  const root = (JSON.parse(readFileSync(file, "utf8")) as { head: HeapNode }).head;
  const sites = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, stack: string[]): void => {
    const s = [...stack, name(n.callFrame)];
    if (n.selfSize > 0) {
      const key = s.slice(-3).reverse().join("  <-  ");
      sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, s);
  };
  walk(root, []);
  process.stdout.write(`== ${file}: ${(total / 2 ** 20).toFixed(1)} MiB sampled as held\n`);
  for (const [k, v] of [...sites.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((v / total) * 100).toFixed(1).padStart(5)}% ${(v / 2 ** 20).toFixed(2).padStart(7)} MiB  ${k}\n`);
  }
}
