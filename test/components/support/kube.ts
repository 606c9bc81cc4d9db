// The Kubernetes objects a run would send to the API server, and their
// validation against the API's published OpenAPI schema (kubernetes-models).
import type { Registration } from "./harness";

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

export interface RegisteredObject {
  readonly registration: Registration;
  readonly object: KubeObject;
}

/** Every Kubernetes object of a run (providers and components excluded). */
export function kubeObjects(registrations: readonly Registration[]): RegisteredObject[] {
  return registrations
    .filter((r) => r.custom && r.type.startsWith("kubernetes:"))
    .map((registration) => ({ registration, object: registration.inputs as unknown as KubeObject }));
}

export function objectsOfKind(registrations: readonly Registration[], kind: string): KubeObject[] {
  return kubeObjects(registrations)
    .map((o) => o.object)
    .filter((o) => o.kind === kind);
}

/** The one object of `kind` (named `name` if given); fails the test if there is not exactly one. */
export function theObject<T = KubeObject>(registrations: readonly Registration[], kind: string, name?: string): T {
  const found = objectsOfKind(registrations, kind).filter((o) => name === undefined || o.metadata.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` named ${name}` : ""}, found ${found.length}`);
  }
  return found[0] as T;
}

type ModelClass = new (data: unknown) => { validate(): void };

/**
 * Validates against the published schema of the object's apiVersion and kind.
 * kubernetes-models is ESM-only, hence the dynamic import.
 */
export async function validateAgainstSchema(object: KubeObject): Promise<void> {
  const models = (await import(`kubernetes-models/${object.apiVersion}`)) as Record<string, unknown>;
  const Model = models[object.kind] as ModelClass | undefined;
  if (Model === undefined) throw new Error(`kubernetes-models has no ${object.apiVersion} ${object.kind}`);
  try {
    new Model(object).validate();
  } catch (err) {
    throw new Error(`${object.kind} ${object.metadata.name} does not match the Kubernetes schema: ${(err as Error).message}`);
  }
}

/** Parses `a=b,c=d` (the only selector form the mesh renders). */
export function parseEqualitySelector(selector: string): Record<string, string> {
  return Object.fromEntries(
    selector.split(",").map((term) => {
      const [key, value, ...rest] = term.split("=");
      if (!key || value === undefined || rest.length > 0) throw new Error(`not an equality selector term: ${term}`);
      return [key, value];
    }),
  );
}
