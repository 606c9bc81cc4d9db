// The classic linkerd hello/world walkthrough: `hello` answers by calling `world`
// through its own node's proxy (http_proxy), so `http_proxy=$NODE_IP:4140 curl -s
// http://hello` prints "Hello world" only if the mesh routes, resolves and
// carries traffic between nodes over mutual TLS.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface HelloWorldDemoArgs {
  readonly namespace: string;
  readonly image: string;
  /** The mesh's outgoing port, which every node's proxy holds as a hostPort. */
  readonly proxyPort: number;
}

/** Port names the mesh's default dtab binds: `/#/io.l5d.k8s/<namespace>/http/<service>`. */
const DEMO_PORT_NAME = "http";
const HELLO_PORT = 7777;
const WORLD_PORT = 7778;
const DEMO_UID = 65532;

interface App {
  readonly name: "hello" | "world";
  readonly port: number;
  readonly args: string[];
  readonly env: k8s.types.input.core.v1.EnvVar[];
}

export class HelloWorldDemo extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly helloService: pulumi.Output<string>;
  readonly worldService: pulumi.Output<string>;

  constructor(name: string, args: HelloWorldDemoArgs, opts?: pulumi.ComponentResourceOptions) {
    super("zt-mesh:index:HelloWorldDemo", name, {}, opts);
    const world = this.app(name, args, { name: "world", port: WORLD_PORT, args: [`-addr=:${WORLD_PORT}`, "-text=world"], env: [] });
    const hello = this.app(name, args, {
      name: "hello",
      port: HELLO_PORT,
      args: [`-addr=:${HELLO_PORT}`, "-text=Hello", "-target=world"],
      env: [
        // Declared before http_proxy, which Kubernetes expands $(HOST_IP) in.
        { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "http_proxy", value: `$(HOST_IP):${args.proxyPort}` },
      ],
    });

    this.namespace = pulumi.output(args.namespace);
    this.worldService = world.metadata.name;
    this.helloService = hello.metadata.name;
    this.registerOutputs({ namespace: this.namespace, helloService: this.helloService, worldService: this.worldService });
  }

  /** A Deployment and its Service, both named after the app so the walkthrough can say `http://hello`. */
  private app(name: string, args: HelloWorldDemoArgs, app: App): k8s.core.v1.Service {
    const labels = {
      "app.kubernetes.io/name": app.name,
      "app.kubernetes.io/instance": name,
      "app.kubernetes.io/part-of": "zt-mesh-demo",
    };
    const metadata = { name: app.name, namespace: args.namespace, labels };
    new k8s.apps.v1.Deployment(
      `${name}-${app.name}`,
      {
        metadata,
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              // The walkthrough is only worth something if hello's call to world
              // crosses nodes, so the two prefer different nodes when there are.
              affinity: {
                podAntiAffinity: {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    {
                      weight: 100,
                      podAffinityTerm: {
                        topologyKey: "kubernetes.io/hostname",
                        labelSelector: {
                          matchLabels: { "app.kubernetes.io/part-of": "zt-mesh-demo", "app.kubernetes.io/instance": name },
                        },
                      },
                    },
                  ],
                },
              },
              securityContext: {
                runAsNonRoot: true,
                runAsUser: DEMO_UID,
                runAsGroup: DEMO_UID,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: app.name,
                  image: args.image,
                  args: app.args,
                  env: app.env,
                  ports: [{ name: DEMO_PORT_NAME, containerPort: app.port, protocol: "TCP" }],
                  // TCP, not HTTP: hello's handler calls world, and a probe
                  // should not fail hello because world is not up yet.
                  readinessProbe: { tcpSocket: { port: DEMO_PORT_NAME }, periodSeconds: 5 },
                  resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ["ALL"] },
                  },
                },
              ],
            },
          },
        },
      },
      { parent: this },
    );
    return new k8s.core.v1.Service(
      `${name}-${app.name}-service`,
      {
        metadata,
        spec: {
          selector: labels,
          ports: [{ name: DEMO_PORT_NAME, port: app.port, targetPort: DEMO_PORT_NAME, protocol: "TCP" }],
        },
      },
      { parent: this },
    );
  }
}
