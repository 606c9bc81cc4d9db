// The commands a user runs after `pulumi up` to see the mesh work, exported as a
// stack output so they always match the stack's namespace, names and ports.
import { TLS_SECRET_KEYS, type MeshPorts } from "./proxy-config";

export interface WalkthroughArgs {
  readonly namespace: string;
  readonly serviceName: string;
  readonly secretName: string;
  readonly identity: string;
  readonly ports: MeshPorts;
  /** Where hello and world run; absent when the demo is off. */
  readonly demoNamespace?: string;
}

/** `kubectl get -o jsonpath` needs the dots in a key escaped. */
function secretKey(key: string): string {
  return key.replace(/\./g, "\\.");
}

export function walkthrough(args: WalkthroughArgs): string {
  const ns = args.namespace;
  const fetch = (key: string, file: string) =>
    `kubectl -n ${ns} get secret ${args.secretName} -o jsonpath='{.data.${secretKey(key)}}' | base64 -d > ${file}`;
  const lines = [
    "# Every node runs a proxy; its outgoing port is open on the node's address.",
    `NODE_IP=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')`,
    "",
  ];
  if (args.demoNamespace === undefined) {
    lines.push(
      "# The hello/world demo is off in this stack (pulumi config set zt-mesh:demo true to add it).",
      "",
    );
  } else {
    lines.push(
      "# hello answers by calling world through its own node's proxy. Prints: Hello world",
      `http_proxy=$NODE_IP:${args.ports.outgoing} curl -s http://hello`,
      "",
    );
  }
  lines.push(
    `# The incoming port ${args.ports.incoming} speaks only mutual TLS with the mesh certificate. Prints: pong`,
    fetch(TLS_SECRET_KEYS.caBundle, "ca.crt"),
    fetch(TLS_SECRET_KEYS.certificate, "tls.crt"),
    fetch(TLS_SECRET_KEYS.privateKey, "tls.key"),
    `kubectl -n ${ns} port-forward service/${args.serviceName} ${args.ports.incoming}:${args.ports.incoming} >/dev/null & PF=$!; sleep 2`,
    `curl -s --cacert ca.crt --cert tls.crt --key tls.key --resolve ${args.identity}:${args.ports.incoming}:127.0.0.1 ` +
      `-H 'l5d-dtab: /svc=>/#/io.l5d.k8s/${ns}/admin/${args.serviceName};' https://${args.identity}:${args.ports.incoming}/admin/ping`,
    "kill $PF; rm -f tls.key",
  );
  return lines.join("\n");
}
