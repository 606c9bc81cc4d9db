// The README, docs/ and the proxy image say what the program does: the config
// tables are Pulumi.yaml's and the schema's, the walkthrough is the one the dev
// stack outputs, every metric is documented, and the image runs the way the
// DaemonSet expects.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BENCH_MARKERS, PERFORMANCE_DOC } from "../../bench/docs-table";
import { SIZES, SIZE_LABEL } from "../../bench/results";
import { PROXY_COMMAND, PROXY_UID } from "../../components/proxy-daemonset";
import { loadSettings } from "../../components/settings";
import { ZtMesh } from "../../components/zt-mesh";
import { MeshMetrics } from "../../proxy/src/telemetry/metrics";
import { BEGIN, CONFIG_DOC, END, PROXY_BEGIN, PROXY_END, configTable, withTable, withTables } from "../../tools/docs/config-reference";
import { run, valueOf } from "./support/harness";
import { REPO, projectFile, stackSource } from "./support/stack-config";

const read = (...path: string[]) => readFileSync(join(REPO, ...path), "utf8");

const DOCS = ["architecture", "configuration", "operations", "reliability", "performance", "development"] as const;

describe("README.md", () => {
  const readme = read("README.md");

  it("opens with the two commands a newcomer needs, and they are real", () => {
    const firstScreen = readme.split("\n").slice(0, 15).join("\n");
    assert.match(firstScreen, /^npm ci && npm run demo\b/m, "the local demo");
    assert.match(firstScreen, /^npm ci && npm test\b/m, "the tests");
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    const demo = /\btsx (\S+\/demo\.ts)\b/.exec(scripts["demo"] ?? "")?.[1];
    assert.ok(demo !== undefined && existsSync(join(REPO, demo)), `npm run demo runs the demo: ${scripts["demo"]}`);
    assert.ok(scripts["test"] !== undefined);
    assert.match(read(".ci/run"), /^npm test$/m, "CI runs the README's test command");
    assert.ok(scripts["test:e2e"]?.includes("test/e2e/"), "npm run test:e2e runs the local-cluster tier");
    assert.match(read(".ci/run"), /^npm run test:e2e$/m, "CI runs the local-cluster tier too");
    assert.match(readme, /^npm run test:e2e\b/m, "the README shows the local-cluster tier");
  });

  it("shows the local-cluster test command too", () => {
    assert.ok(readme.includes("npm run test:e2e"), "npm run test:e2e");
  });

  it("is the user's page: short, with the depth in docs/, linked", () => {
    assert.ok(readme.split("\n").length <= 260, `README.md has ${readme.split("\n").length} lines`);
    for (const page of DOCS) {
      assert.ok(existsSync(join(REPO, "docs", `${page}.md`)), `docs/${page}.md exists`);
      assert.ok(readme.includes(`(docs/${page}.md`), `README.md links docs/${page}.md`);
    }
  });

  it("shows the walkthrough the dev stack outputs, word for word", async () => {
    const { result } = await run(() => new ZtMesh("zt-mesh", loadSettings(stackSource("dev"))));
    const walkthrough = await valueOf(result.walkthrough);
    assert.ok(readme.includes(walkthrough), `README.md should contain:\n${walkthrough}`);
  });
});

describe(CONFIG_DOC, () => {
  const doc = read(CONFIG_DOC);

  it("has the config reference table generated from Pulumi.yaml (npm run docs:config)", () => {
    assert.ok(doc.includes(BEGIN) && doc.includes(END), "the generated-table markers");
    const table = configTable(read("Pulumi.yaml"));
    assert.equal(withTable(doc, table), doc, `${CONFIG_DOC} is out of date: run npm run docs:config`);
    for (const key of Object.keys(projectFile().config)) assert.ok(table.includes(`| \`zt-mesh:${key}\` |`), key);
  });

  it("documents every key of the proxy's config file, generated from its schema", () => {
    assert.ok(doc.includes(PROXY_BEGIN) && doc.includes(PROXY_END), "the generated-table markers");
    assert.equal(withTables(doc, read("Pulumi.yaml")), doc, `${CONFIG_DOC} is out of date: run npm run docs:config`);
    for (const section of ["outgoing", "incoming", "admin", "tls", "kubernetes", "limits", "retries", "ejection", "log"]) {
      assert.match(doc, new RegExp(`\\| \`${section}\\.`), section);
    }
  });
});

describe("docs/operations.md", () => {
  it("documents every metric the proxy exports", async () => {
    const doc = read("docs", "operations.md");
    const names = (await new MeshMetrics({ processMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length > 10);
    for (const name of names) assert.ok(doc.includes(`\`${name}\``), `docs/operations.md should document ${name}`);
  });
});

describe(PERFORMANCE_DOC, () => {
  it("holds the benchmark's generated figures, a row for every response size", () => {
    const doc = read(PERFORMANCE_DOC);
    const start = doc.indexOf(BENCH_MARKERS.begin);
    const stop = doc.indexOf(BENCH_MARKERS.end);
    assert.ok(start >= 0 && stop > start, "the generated-section markers");
    const section = doc.slice(start, stop);
    for (const size of SIZES) assert.match(section, new RegExp(`^\\| ${SIZE_LABEL[size]} \\|`, "m"), SIZE_LABEL[size]);
    assert.match(section, /^\| target for \(b\) \|/m, "the targets");
  });
});

describe("Dockerfile", () => {
  const lines = read("Dockerfile")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const stages = lines.reduce<string[][]>((acc, line) => {
    if (line.startsWith("FROM ")) acc.push([]);
    acc[acc.length - 1]?.push(line);
    return acc;
  }, []);
  const runtime = stages[stages.length - 1] ?? [];

  it("is multi-stage on a pinned Node image, the same Node as the repo's toolchain", () => {
    assert.ok(stages.length >= 2, "a build stage and a runtime stage");
    const devNode = (JSON.parse(read("package.json")) as { devDependencies: Record<string, string> }).devDependencies["node"];
    for (const stage of stages) assert.match(stage[0] ?? "", new RegExp(`^FROM node:${devNode}-bookworm-slim( AS \\w+)?$`));
  });

  it("builds with dev dependencies and ships production dependencies only", () => {
    assert.ok(stages[0]?.some((l) => /npm ci\b/.test(l)) && stages[0]?.some((l) => /npm run build/.test(l)));
    const installs = runtime.filter((l) => /npm (ci|install)\b/.test(l));
    assert.equal(installs.length, 1);
    assert.match(installs[0] ?? "", /npm ci --omit=dev/);
    const copied = runtime.filter((l) => l.startsWith("COPY --from="));
    assert.deepEqual(
      copied.map((l) => l.split(" ").slice(2)),
      [
        ["/src/packages/proxy-config/dist", "packages/proxy-config/dist"],
        ["/src/proxy/dist", "proxy/dist"],
      ],
      "copies the built dist/ of the proxy and its config package only",
    );
  });

  it("runs the DaemonSet's command from the proxy's directory as the non-root user the DaemonSet expects", () => {
    const workdirs = runtime.filter((l) => l.startsWith("WORKDIR "));
    assert.equal(workdirs[workdirs.length - 1], "WORKDIR /app/proxy");
    assert.ok(runtime.includes(`ENTRYPOINT ${JSON.stringify(PROXY_COMMAND).replace(/","/g, '", "')}`), "ENTRYPOINT is PROXY_COMMAND");
    const user = runtime.find((l) => l.startsWith("USER "));
    assert.equal(user, `USER ${PROXY_UID}:${PROXY_UID}`);
    assert.notEqual(PROXY_UID, 0);
  });

  it("keeps node_modules, dist and the Pulumi program out of the build context", () => {
    const ignored = read(".dockerignore").split("\n").map((l) => l.trim());
    for (const entry of ["**/node_modules", "**/dist", "components", "test"]) assert.ok(ignored.includes(entry), entry);
  });
});
