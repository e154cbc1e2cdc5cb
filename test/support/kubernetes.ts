/**
 * Reading and checking the Kubernetes manifests of deploy/k8s without a cluster: YAML parsing,
 * validation against the Kubernetes OpenAPI schema (kubernetes-models), a strict field check
 * that the schema alone does not give, and rendering with `kubectl kustomize` when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Container, Namespace, Secret, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { validatePrometheusRule } from './prometheus-rule.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const k8sDir = join(repoRoot, 'deploy/k8s');

/** One YAML document of a file under deploy/k8s. */
export interface Manifest {
  /** Path relative to deploy/k8s, e.g. `base/cronjob-daily.yaml`. */
  readonly file: string;
  readonly object: Record<string, unknown>;
}

interface Kind {
  readonly validate: (object: unknown) => void;
  /** The module and interface of kubernetes-models that types this kind, for the strict check. */
  readonly typeModule: string;
  readonly typeName: string;
}

// Every kind the deployment uses. An object of another kind fails the tests: add it here, with
// its model, rather than letting it through unchecked.
const kinds: Record<string, Kind> = {
  'batch/v1 CronJob': {
    validate: (o) => new CronJob(o as ConstructorParameters<typeof CronJob>[0]).validate(),
    typeModule: 'kubernetes-models/batch/v1/CronJob',
    typeName: 'ICronJob',
  },
  'batch/v1 Job': {
    validate: (o) => new Job(o as ConstructorParameters<typeof Job>[0]).validate(),
    typeModule: 'kubernetes-models/batch/v1/Job',
    typeName: 'IJob',
  },
  'v1 ConfigMap': {
    validate: (o) => new ConfigMap(o as ConstructorParameters<typeof ConfigMap>[0]).validate(),
    typeModule: 'kubernetes-models/v1/ConfigMap',
    typeName: 'IConfigMap',
  },
  'v1 Secret': {
    validate: (o) => new Secret(o as ConstructorParameters<typeof Secret>[0]).validate(),
    typeModule: 'kubernetes-models/v1/Secret',
    typeName: 'ISecret',
  },
  'v1 Namespace': {
    validate: (o) => new Namespace(o as ConstructorParameters<typeof Namespace>[0]).validate(),
    typeModule: 'kubernetes-models/v1/Namespace',
    typeName: 'INamespace',
  },
  // Not a Kubernetes model: the Prometheus Operator's CRD, typed and validated in prometheus-rule.ts.
  'monitoring.coreos.com/v1 PrometheusRule': {
    validate: validatePrometheusRule,
    typeModule: './prometheus-rule.js',
    typeName: 'IPrometheusRule',
  },
  'v1 ServiceAccount': {
    validate: (o) => new ServiceAccount(o as ConstructorParameters<typeof ServiceAccount>[0]).validate(),
    typeModule: 'kubernetes-models/v1/ServiceAccount',
    typeName: 'IServiceAccount',
  },
};

const containerKind: Kind = {
  validate: (o) => new Container(o as ConstructorParameters<typeof Container>[0]).validate(),
  typeModule: 'kubernetes-models/v1/Container',
  typeName: 'IContainer',
};

/** Every `*.yaml` / `*.yml` file under `dir`, relative to it, sorted. */
export function yamlFiles(dir: string = k8sDir): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** Parses a multi-document YAML text strictly: a syntax error or a duplicate key throws. */
export function parseYaml(text: string, source: string): Record<string, unknown>[] {
  return parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true })
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`${source}: ${document.errors.map((e) => e.message).join('; ')}`);
      return document.toJS() as unknown;
    })
    .filter((value) => value !== null && value !== undefined)
    .map((value) => {
      if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${source}: a document is not a mapping`);
      return value as Record<string, unknown>;
    });
}

/** All documents of all YAML files under deploy/k8s. */
export function loadManifests(dir: string = k8sDir): Manifest[] {
  return yamlFiles(dir).flatMap((file) => parseYaml(readFileSync(join(dir, file), 'utf8'), file).map((object) => ({ file, object })));
}

export function kindOf(object: Record<string, unknown>): string {
  return `${String(object.apiVersion)} ${String(object.kind)}`;
}

export function isKustomization(object: Record<string, unknown>): boolean {
  return typeof object.apiVersion === 'string' && object.apiVersion.startsWith('kustomize.config.k8s.io/');
}

/** Validates one Kubernetes object against the schema of its kind; throws with the schema's errors. */
export function validateObject(object: Record<string, unknown>): void {
  const kind = kinds[kindOf(object)];
  if (!kind) throw new Error(`no schema registered for ${kindOf(object)}: add it to test/support/kubernetes.ts`);
  kind.validate(object);
}

/** Validates a container (as found in a kustomize patch) against the Container schema. */
export function validateContainer(container: unknown): void {
  containerKind.validate(container);
}

/**
 * Kubernetes' OpenAPI schema accepts unknown fields (it has no `additionalProperties: false`),
 * so a misspelt or misplaced field (`ttlSecondAfterFinished`, `podFailurePolicy` under the
 * CronJob's spec) passes `validate()` and the API server drops it, with at most a warning. This
 * check assigns each object, as a literal, to the TypeScript interface of its kind and lets the
 * compiler's excess-property check find such fields (and wrong types, such as a number where
 * an environment value must be a string). Returns one message per failing object; empty when
 * all are exact.
 */
export function strictFieldErrors(objects: { label: string; object: unknown; kind?: 'container' }[]): string[] {
  const imports = new Map<string, string>();
  const declarations: { label: string; start: number; end: number }[] = [];
  let body = '';
  objects.forEach(({ label, object, kind: forced }, i) => {
    const kind = forced === 'container' ? containerKind : kinds[kindOf(object as Record<string, unknown>)];
    if (!kind) {
      declarations.push({ label, start: -1, end: -1 });
      return;
    }
    imports.set(kind.typeName, kind.typeModule);
    const text = `export const object${i}: ${kind.typeName} = ${JSON.stringify(object, null, 2)};\n`;
    declarations.push({ label, start: body.length, end: body.length + text.length });
    body += text;
  });
  const header = [...imports].map(([name, module]) => `import type { ${name} } from '${module}';\n`).join('');
  const source = header + body;
  const fileName = join(dirname(fileURLToPath(import.meta.url)), '__manifests__.ts');

  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion) : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);

  const errors = declarations.filter((d) => d.start < 0).map((d) => `${d.label}: no type registered for this kind`);
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (diagnostic.file?.fileName !== fileName || diagnostic.start === undefined) {
      errors.push(`type check: ${message}`);
      continue;
    }
    const offset = diagnostic.start - header.length;
    const owner = declarations.find((d) => offset >= d.start && offset < d.end);
    const { line } = ts.getLineAndCharacterOfPosition(diagnostic.file, diagnostic.start);
    const lineText = source.split('\n')[line]?.trim() ?? '';
    errors.push(`${owner?.label ?? 'header'}: ${message} (at ${lineText})`);
  }
  return errors;
}

/** The `kubectl` binary, when one is installed (its built-in kustomize renders the overlays). */
export function kubectlAvailable(): boolean {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 20_000 });
  return probe.status === 0;
}

/** Renders a kustomization directory (relative to deploy/k8s) with `kubectl kustomize`. */
export function kustomize(directory: string): Record<string, unknown>[] {
  const result = spawnSync('kubectl', ['kustomize', join(k8sDir, directory)], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${directory} failed: ${result.stderr}`);
  return parseYaml(result.stdout, `kustomize ${directory}`);
}
