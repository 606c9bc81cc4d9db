// The ConfigMap text is produced by the proxy's own renderer and read back by
// the proxy's own parser, with every value the Pulumi side decides spelled out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  PROXY_TLS_DIR,
  ProxyConfigError,
  TLS_SECRET_KEYS,
  renderProxyConfig,
  type ProxyConfigArgs,
} from "../../components/proxy-config";
import { parseConfigText } from "@zt-mesh/proxy-config";

const args: ProxyConfigArgs = {
  ports: { outgoing: 5140, incoming: 5141, admin: 5990 },
  outgoingDtab: "/svc => /#/io.l5d.k8s/apps/http;",
  incomingDtab: "/svc => /#/io.l5d.k8s/apps/http;",
  dtabOverrideFrom: ["10.0.0.0/8"],
  identity: "mesh.example.zt-mesh.local",
  meshNamespace: "mesh",
  meshPodSelector: "app.kubernetes.io/name=zt-mesh-proxy,app.kubernetes.io/instance=x",
  logLevel: "warn",
};

describe("renderProxyConfig", () => {
  it("renders text the proxy's parser accepts, carrying every value it was given", () => {
    const config = parseConfigText(renderProxyConfig(args));
    assert.equal(config.outgoing.port, 5140);
    assert.equal(config.incoming.port, 5141);
    assert.equal(config.admin.port, 5990);
    assert.equal(config.outgoing.dtab, args.outgoingDtab);
    assert.equal(config.incoming.dtab, args.incomingDtab);
    assert.deepEqual(config.outgoing.dtabOverrideFrom, ["10.0.0.0/8"]);
    assert.equal(config.tls.identity, args.identity);
    assert.equal(config.kubernetes.meshNamespace, "mesh");
    assert.equal(config.kubernetes.meshPodSelector, args.meshPodSelector);
    assert.equal(config.log.level, "warn");
  });

  it("points the proxy at the files of the mounted mesh Secret", () => {
    const config = parseConfigText(renderProxyConfig(args));
    assert.equal(config.tls.caBundle, `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.caBundle}`);
    assert.equal(config.tls.cert, `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.certificate}`);
    assert.equal(config.tls.key, `${PROXY_TLS_DIR}/${TLS_SECRET_KEYS.privateKey}`);
    assert.deepEqual(TLS_SECRET_KEYS, { caBundle: "ca-bundle.crt", certificate: "tls.crt", privateKey: "tls.key" });
  });

  it("writes the fully defaulted config, so the file says exactly what the proxy runs with", () => {
    const text = renderProxyConfig(args);
    for (const section of ["limits:", "retries:", "ejection:", "kubeconfig:"]) assert.match(text, new RegExp(section));
  });

  it("throws ProxyConfigError naming the field the proxy rejects", () => {
    assert.throws(
      () => renderProxyConfig({ ...args, incomingDtab: "/svc => /a =>" }),
      (err: unknown) => err instanceof ProxyConfigError && /^incoming\.dtab: bad dtab/.test(err.problems[0] ?? ""),
    );
    assert.throws(
      () => renderProxyConfig({ ...args, ports: { ...args.ports, incoming: 0 } }),
      (err: unknown) => err instanceof ProxyConfigError && err.problems.some((p) => p.startsWith("incoming.port:")),
    );
  });

  it("refuses a dentry naming an unconfigured namer, so `pulumi preview` fails naming the dentry and its position", () => {
    assert.throws(
      () => renderProxyConfig({ ...args, outgoingDtab: "/svc => /#/io.l5d.k8s/apps/http;\n/svc/db => /#/io.l5d.consul/dc1/db;" }),
      (err: unknown) =>
        err instanceof ProxyConfigError &&
        err.problems[0] ===
          "outgoing.dtab: bad dtab: dentry 2 at offset 33 (/svc/db => /#/io.l5d.consul/dc1/db): /#/io.l5d.consul is not a configured namer (configured: /#/io.l5d.k8s)",
    );
  });
});
