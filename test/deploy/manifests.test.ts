/**
 * The Kubernetes deployment (deploy/k8s), checked without a cluster: every manifest parses and
 * validates against the Kubernetes schema, no field is unknown or mistyped, the kustomizations
 * reference what exists, the workloads carry the settings an operator relies on (schedule zone,
 * no overlapping runs, no retry of configuration errors or a held lock, limits, a locked-down
 * security context, the database URL from a Secret, an eviction never taken for a refusal), and
 * they agree with the Dockerfile and the job's own configuration rules; the namespace enforces the
 * restricted Pod Security Standard and holds every object; the ConfigMap names a metrics sink.
 * With kubectl installed, the kustomizations are also rendered and the output checked the same way.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IJobSpec } from 'kubernetes-models/batch/v1/JobSpec';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { entrypoint, lastIn, parseDockerfile, stages } from '../support/dockerfile.js';
import {
  isKustomization,
  kindOf,
  kubectlAvailable,
  kustomize,
  loadManifests,
  repoRoot,
  strictFieldErrors,
  validateContainer,
  validateObject,
  yamlFiles,
  type Manifest,
} from '../support/kubernetes.js';

const mainContainerName = 'aggregate-features-daily';
const secretName = 'aggregate-features-daily-db';
const configMapName = 'aggregate-features-daily-config';

const manifests = loadManifests();
const kustomizations = manifests.filter((m) => isKustomization(m.object));

interface KustomizationRefs {
  readonly file: string;
  readonly resources: string[];
  readonly components: string[];
  readonly patches: string[];
}

function refsOf(m: Manifest): KustomizationRefs {
  const dir = dirname(m.file);
  const list = (key: string) => ((m.object[key] as unknown[] | undefined) ?? []).map((p) => normalize(join(dir, String(p))));
  const patches = ((m.object.patches as { path?: string }[] | undefined) ?? []).flatMap((p) =>
    p.path ? [normalize(join(dir, p.path))] : [],
  );
  return { file: m.file, resources: list('resources'), components: list('components'), patches };
}

const refs = kustomizations.map(refsOf);
const patchFiles = new Set(refs.flatMap((r) => r.patches));
const objects = manifests.filter((m) => !isKustomization(m.object) && !patchFiles.has(m.file));

interface Workload {
  readonly label: string;
  readonly cron: ICronJob['spec'] | undefined;
  readonly job: IJobSpec;
  readonly pod: IPodSpec;
  readonly main: IContainer;
}

function workloadOf(label: string, object: Record<string, unknown>): Workload | undefined {
  let cron: ICronJob['spec'] | undefined;
  let job: IJobSpec | undefined;
  if (kindOf(object) === 'batch/v1 CronJob') {
    cron = (object as unknown as ICronJob).spec;
    job = cron?.jobTemplate.spec;
  } else if (kindOf(object) === 'batch/v1 Job') {
    job = (object as unknown as IJob).spec;
  } else {
    return undefined;
  }
  if (!job?.template.spec) throw new Error(`${label}: no pod template`);
  const pod = job.template.spec;
  const main = pod.containers.find((c) => c.name === mainContainerName);
  if (!main) throw new Error(`${label}: no container named ${mainContainerName}`);
  return { label, cron, job, pod, main };
}

function workloadsOf(list: { label: string; object: Record<string, unknown> }[]): Workload[] {
  return list.flatMap(({ label, object }) => workloadOf(label, object) ?? []);
}

const workloads = workloadsOf(
  objects.map((m) => ({ label: `${m.file} ${String((m.object.metadata as { name?: string }).name)}`, object: m.object })),
);

function workload(name: string): Workload {
  const found = workloads.find((w) => w.label.endsWith(` ${name}`));
  if (!found) throw new Error(`no workload named ${name}`);
  return found;
}

function byName(kind: string, name: string): Record<string, unknown> {
  const found = objects.find((m) => kindOf(m.object) === kind && (m.object.metadata as { name?: string }).name === name);
  if (!found) throw new Error(`no ${kind} named ${name}`);
  return found.object;
}

/** A Kubernetes quantity in bytes (the binary and decimal suffixes the manifests use). */
function bytes(quantity: string | number | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(String(quantity));
  if (!match) throw new Error(`not a memory quantity: ${String(quantity)}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

function envOf(container: IContainer, name: string) {
  return container.env?.find((e) => e.name === name);
}

function failJobCodes(job: IJobSpec): number[] {
  return (job.podFailurePolicy?.rules ?? [])
    .filter((r) => r.action === 'FailJob' && r.onExitCodes?.operator === 'In')
    .flatMap((r) => r.onExitCodes!.values);
}

const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const runtimeStage = stages(dockerfile).at(-1)!;

describe('manifests are valid Kubernetes objects', () => {
  test('deploy/k8s holds the daily and verify CronJobs, the migrate and backfill Jobs, the Secret example and the kustomizations', () => {
    const files = yamlFiles();
    for (const expected of [
      'kustomization.yaml',
      'secret.example.yaml',
      'base/kustomization.yaml',
      'base/namespace.yaml',
      'base/cronjob-daily.yaml',
      'base/cronjob-verify.yaml',
      'base/job-migrate.yaml',
      'backfill/kustomization.yaml',
      'backfill/job-backfill.yaml',
      'cloud-sql/kustomization.yaml',
      'components/cloud-sql-proxy/kustomization.yaml',
      'monitoring/kustomization.yaml',
      'monitoring/prometheusrule.yaml',
    ]) {
      expect(files).toContain(expected);
    }
    expect(objects.length).toBeGreaterThanOrEqual(7);
  });

  test.each(objects.map((m) => [`${m.file} (${kindOf(m.object)})`, m] as const))('%s validates against the schema', (_label, m) => {
    expect(() => validateObject(m.object)).not.toThrow();
  });

  test('no manifest has an unknown or mistyped field (strict check against the API types)', () => {
    const patchContainers = manifests
      .filter((m) => patchFiles.has(m.file) && (kindOf(m.object) === 'batch/v1 CronJob' || kindOf(m.object) === 'batch/v1 Job'))
      .flatMap(
        (m) =>
          patchedPod(m.object).initContainers?.map((c) => ({ label: `${m.file} ${c.name}`, object: c, kind: 'container' as const })) ?? [],
      );
    expect(patchContainers.length).toBeGreaterThan(0);
    const errors = strictFieldErrors([...objects.map((m) => ({ label: m.file, object: m.object })), ...patchContainers]);
    expect(errors).toEqual([]);
  });

  test('the checks reject broken manifests (so they cannot pass silently)', () => {
    const daily = byName('batch/v1 CronJob', 'aggregate-features-daily');
    const broken = (mutate: (copy: ICronJob) => void): Record<string, unknown> => {
      const copy = structuredClone(daily) as unknown as ICronJob;
      mutate(copy);
      return copy as unknown as Record<string, unknown>;
    };
    const badPolicy = broken((c) => Object.assign(c.spec!, { concurrencyPolicy: 'Sometimes' }));
    const noSchedule = broken((c) => delete (c.spec as { schedule?: string }).schedule);
    const numericEnv = broken((c) => Object.assign(c.spec!.jobTemplate.spec!.template.spec!.containers[0]!.env![1]!, { value: 27 }));
    const unnamed = broken((c) => delete (c.spec!.jobTemplate.spec!.template.spec!.containers[0] as { name?: string }).name);
    for (const object of [badPolicy, noSchedule, numericEnv, unnamed]) {
      expect(() => validateObject(object)).toThrow();
    }
    expect(() => validateObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })).toThrow(/no schema registered/);

    // What the schema lets through and the strict check catches: a misspelt field, a field on the
    // wrong object (podFailurePolicy belongs to the Job's spec, not the CronJob's).
    const misspelt = broken((c) => {
      const job = c.spec!.jobTemplate.spec! as unknown as Record<string, unknown>;
      job.ttlSecondAfterFinished = job.ttlSecondsAfterFinished;
      delete job.ttlSecondsAfterFinished;
    });
    const misplaced = broken((c) => Object.assign(c.spec!, { podFailurePolicy: c.spec!.jobTemplate.spec!.podFailurePolicy }));
    expect(() => validateObject(misspelt)).not.toThrow();
    expect(() => validateObject(misplaced)).not.toThrow();
    const errors = strictFieldErrors([
      { label: 'original', object: daily },
      { label: 'misspelt', object: misspelt },
      { label: 'misplaced', object: misplaced },
      { label: 'numeric env', object: numericEnv },
    ]);
    expect(errors.filter((e) => e.startsWith('original'))).toEqual([]);
    expect(errors.find((e) => e.startsWith('misspelt'))).toMatch(/ttlSecondAfterFinished/);
    expect(errors.find((e) => e.startsWith('misplaced'))).toMatch(/podFailurePolicy/);
    expect(errors.find((e) => e.startsWith('numeric env'))).toMatch(/not assignable to type 'string'/);
  });
});

function patchedPod(object: Record<string, unknown>): IPodSpec {
  const spec = object.spec as { jobTemplate?: { spec: IJobSpec }; template?: IJobSpec['template'] };
  const template = spec.jobTemplate ? spec.jobTemplate.spec.template : spec.template;
  return template!.spec!;
}

describe('kustomizations', () => {
  test('every path they reference exists; every manifest is referenced, except the Secret example', () => {
    const files = new Set(yamlFiles());
    const dirs = new Set([...files].map((f) => dirname(f)));
    for (const r of refs) {
      for (const path of [...r.resources, ...r.components]) {
        const isDir = dirs.has(path);
        expect(isDir || files.has(path), `${r.file} references ${path}`).toBe(true);
        if (isDir) expect(files.has(join(path, 'kustomization.yaml')), `${path} has a kustomization.yaml`).toBe(true);
      }
      for (const path of r.patches) expect(files.has(path), `${r.file} patch ${path}`).toBe(true);
    }
    const referenced = new Set(refs.flatMap((r) => [...r.resources, ...r.patches]));
    const unreferenced = objects.map((m) => m.file).filter((f) => !referenced.has(f));
    expect([...new Set(unreferenced)]).toEqual(['secret.example.yaml']);
  });

  test('the top-level kustomization applies the base with the image component; cloud-sql adds the proxy', () => {
    const top = refs.find((r) => r.file === 'kustomization.yaml')!;
    expect(top.resources).toEqual(['base']);
    expect(top.components).toContain('components/image');
    const cloudSql = refs.find((r) => r.file === 'cloud-sql/kustomization.yaml')!;
    expect(cloudSql.resources).toEqual(['base']);
    expect(cloudSql.components).toEqual(expect.arrayContaining(['components/image', 'components/cloud-sql-proxy']));
    const backfill = refs.find((r) => r.file === 'backfill/kustomization.yaml')!;
    expect(backfill.components).toContain('components/image');
    const image = kustomizations.find((m) => m.file === 'components/image/kustomization.yaml')!.object.images as { name: string }[];
    expect(image.map((i) => i.name)).toEqual([mainContainerName]);
  });

  test('the Secret example holds a placeholder, never a real password', () => {
    const secret = byName('v1 Secret', secretName) as { stringData?: Record<string, string>; data?: unknown };
    expect(secret.data).toBeUndefined();
    const url = new URL(secret.stringData!.DATABASE_URL!);
    expect(url.protocol).toBe('postgres:');
    expect(url.password).toBe('CHANGE_ME');
  });
});

describe('every workload (daily, verify, migrate, backfill)', () => {
  test('there are four', () => {
    expect(workloads.map((w) => w.label.split(' ')[1]).sort()).toEqual([
      'aggregate-features-backfill',
      'aggregate-features-daily',
      'aggregate-features-migrate',
      'aggregate-features-verify',
    ]);
  });

  test.each(workloads.map((w) => [w.label, w] as const))('%s: retries, deadlines and failure policy', (_label, w) => {
    expect(w.pod.restartPolicy).toBe('Never'); // podFailurePolicy requires it
    expect(w.job.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(w.job.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(w.job.backoffLimit ?? w.job.backoffLimitPerIndex).toBeGreaterThanOrEqual(1);
    expect(failJobCodes(w.job)).toContain(2);
    for (const rule of w.job.podFailurePolicy!.rules) {
      if (rule.onExitCodes) expect(rule.onExitCodes.containerName).toBe(mainContainerName);
      if (rule.action === 'FailIndex') expect(w.job.backoffLimitPerIndex).toBeGreaterThanOrEqual(0);
    }
    // The first rule, since the first rule that matches decides: an evicted or preempted pod gets
    // SIGTERM and the job exits 1, which an exit-code rule before it would take for the job's failure.
    expect(w.job.podFailurePolicy!.rules[0]).toEqual({
      action: 'Ignore',
      onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }],
    });
  });

  test.each(workloads.map((w) => [w.label, w] as const))('%s: non-root, read-only, no privileges, seccomp', (_label, w) => {
    const pod = w.pod.securityContext!;
    const container = w.main.securityContext!;
    expect(pod.runAsNonRoot ?? container.runAsNonRoot).toBe(true);
    const uid = container.runAsUser ?? pod.runAsUser;
    expect(uid).toBeGreaterThan(0);
    expect(container.readOnlyRootFilesystem).toBe(true);
    expect(container.allowPrivilegeEscalation).toBe(false);
    expect(container.capabilities?.drop).toContain('ALL');
    expect(container.capabilities?.add ?? []).toEqual([]);
    expect((container.seccompProfile ?? pod.seccompProfile)?.type).toBe('RuntimeDefault');
    expect(w.pod.automountServiceAccountToken).toBe(false);
    expect(w.pod.hostNetwork ?? false).toBe(false);
    // The image's user, so files the image owns by root stay read-only to the job.
    const user = lastIn(dockerfile, runtimeStage, 'USER');
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(uid).toBe(Number(user!.split(':')[0]));
    // A read-only root needs a writable /tmp for anything that insists on a temporary file.
    const tmp = w.main.volumeMounts?.find((m) => m.mountPath === '/tmp');
    expect(w.pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  test.each(workloads.map((w) => [w.label, w] as const))('%s: resources, secret and configuration', (_label, w) => {
    const resources = w.main.resources!;
    expect(resources.requests?.cpu).toBeDefined();
    expect(bytes(resources.requests?.memory)).toBeGreaterThan(0);
    const limit = bytes(resources.limits?.memory);
    expect(limit).toBeGreaterThanOrEqual(bytes(resources.requests?.memory));
    expect(limit).toBeLessThanOrEqual(bytes('512Mi'));
    const heap = /--max-old-space-size=(\d+)/.exec(envOf(w.main, 'NODE_OPTIONS')?.value ?? '');
    expect(Number(heap?.[1]) * 1024 ** 2).toBeLessThan(limit);

    expect(envOf(w.main, 'DATABASE_URL')).toEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: secretName, key: 'DATABASE_URL' } },
    });
    expect(envOf(w.main, 'LOG_FORMAT')?.value).toBe('json');
    expect(w.main.envFrom).toEqual([{ configMapRef: { name: configMapName } }]);
    expect(w.main.image).toBe(mainContainerName); // replaced by components/image
    expect(w.pod.serviceAccountName).toBe('aggregate-features-daily');
    byName('v1 ServiceAccount', w.pod.serviceAccountName!);
  });

  test.each(workloads.map((w) => [w.label, w] as const))("%s: its environment passes the job's own configuration checks", (_label, w) => {
    const data = (byName('v1 ConfigMap', configMapName) as { data: Record<string, string> }).data;
    const env: Record<string, string> = { ...data, DATABASE_URL: 'postgres://job:secret@db.internal:5432/features' };
    for (const e of w.main.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    const config = loadConfig(env);
    expect(config.logFormat).toBe('json');
  });

  test('the Secret example has the name and key the workloads read', () => {
    const secret = byName('v1 Secret', secretName) as { stringData: Record<string, string> };
    expect(Object.keys(secret.stringData)).toEqual(['DATABASE_URL']);
  });
});

describe('the namespace', () => {
  test('enforces the restricted Pod Security Standard, and the kustomizations put their objects into it', () => {
    const namespace = byName('v1 Namespace', 'features') as { metadata: { name: string; labels: Record<string, string> } };
    expect(namespace.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'latest',
    });
    expect(refs.find((r) => r.file === 'base/kustomization.yaml')!.resources).toContain('base/namespace.yaml');
    for (const file of ['base/kustomization.yaml', 'backfill/kustomization.yaml', 'monitoring/kustomization.yaml']) {
      const kustomization = kustomizations.find((m) => m.file === file)!;
      expect(kustomization.object.namespace, file).toBe(namespace.metadata.name);
    }
  });
});

describe('monitoring', () => {
  test('the ConfigMap names a metrics sink that the job accepts', () => {
    const data = (byName('v1 ConfigMap', configMapName) as { data: Record<string, string> }).data;
    const config = loadConfig({ ...data, DATABASE_URL: 'postgres://job:secret@db.internal:5432/features' });
    expect(config.metrics.pushgatewayUrl ?? config.metrics.textfile).toBeDefined();
  });

  test('the PrometheusRule is referenced by its kustomization, apart from the standing deployment (it needs the CRD)', () => {
    const monitoring = refs.find((r) => r.file === 'monitoring/kustomization.yaml')!;
    expect(monitoring.resources).toEqual(['monitoring/prometheusrule.yaml']);
    expect(refs.find((r) => r.file === 'kustomization.yaml')!.resources).not.toContain('monitoring');
    expect(() => validateObject(byName('monitoring.coreos.com/v1 PrometheusRule', 'aggregate-features-daily'))).not.toThrow();
    const broken = structuredClone(byName('monitoring.coreos.com/v1 PrometheusRule', 'aggregate-features-daily')) as {
      spec: { groups: { rules: { for?: string }[] }[] };
    };
    broken.spec.groups[0]!.rules[0]!.for = '26 hours';
    expect(() => validateObject(broken as unknown as Record<string, unknown>)).toThrow(/not a duration/);
    const misspelt = structuredClone(byName('monitoring.coreos.com/v1 PrometheusRule', 'aggregate-features-daily')) as {
      spec: { groups: Record<string, unknown>[] };
    };
    misspelt.spec.groups[0]!.interva = '1m';
    expect(strictFieldErrors([{ label: 'misspelt', object: misspelt }])).toEqual([expect.stringMatching(/^misspelt: .*interva/)]);
  });
});

describe('the daily CronJob', () => {
  const daily = workload('aggregate-features-daily');

  test('runs nightly in the configured time zone, never overlapping, skipping a run that cannot start in time', () => {
    const cron = daily.cron!;
    expect(cron.schedule.split(/\s+/)).toHaveLength(5);
    expect(cron.schedule.split(/\s+/).slice(2)).toEqual(['*', '*', '*']);
    const data = (byName('v1 ConfigMap', configMapName) as { data: Record<string, string> }).data;
    expect(cron.timeZone).toBe(data.AGG_TIMEZONE);
    expect(cron.concurrencyPolicy).toBe('Forbid');
    expect(cron.startingDeadlineSeconds).toBeGreaterThan(0);
    expect(cron.startingDeadlineSeconds).toBeLessThan(24 * 3600);
    expect(daily.main.args).toEqual(['run']);
  });

  test('fails at once, without retries, on a refusal (1), a configuration error (2) or a held lock (3); retries 4', () => {
    // 1: a guard's refusal or failed combinations come out the same on every try.
    expect(failJobCodes(daily.job).sort()).toEqual([1, 2, 3]);
    expect(failJobCodes(daily.job)).not.toContain(4); // an unreachable database is worth a retry
    expect(daily.job.podFailurePolicy!.rules.map((r) => r.action)).toEqual(['Ignore', 'FailJob']);
    expect(daily.job.backoffLimit).toBeGreaterThanOrEqual(1);
    // The run, its retries included, ends before the next night's run is due.
    expect(daily.job.activeDeadlineSeconds).toBeLessThan(24 * 3600);
  });
});

describe('the weekly verify CronJob', () => {
  const verify = workload('aggregate-features-verify');

  test('runs verify once a week, in the same zone as the daily run, and does not retry drift', () => {
    const fields = verify.cron!.schedule.split(/\s+/);
    expect(fields).toHaveLength(5);
    expect(fields[2]).toBe('*');
    expect(fields[4]).toMatch(/^[0-7]$/);
    expect(verify.cron!.timeZone).toBe(workload('aggregate-features-daily').cron!.timeZone);
    expect(verify.cron!.concurrencyPolicy).toBe('Forbid');
    expect(verify.main.args?.[0]).toBe('verify');
    expect(failJobCodes(verify.job)).toEqual(expect.arrayContaining([1, 2, 3]));
  });
});

describe('the migrate Job', () => {
  test('runs migrate', () => {
    expect(workload('aggregate-features-migrate').main.args).toEqual(['migrate']);
  });
});

describe('the sharded backfill (Indexed Job)', () => {
  const backfill = workload('aggregate-features-backfill');

  test('N indexed pods, all at once, each told its shard through SHARD_COUNT and JOB_COMPLETION_INDEX', () => {
    expect(backfill.job.completionMode).toBe('Indexed');
    const n = backfill.job.completions!;
    expect(n).toBeGreaterThan(1);
    expect(backfill.job.parallelism).toBe(n);
    expect(Number(envOf(backfill.main, 'SHARD_COUNT')?.value)).toBe(n);
    const args = backfill.main.args!;
    expect(args[0]).toBe('backfill');
    expect(args).toContain('--from');
    expect(args).toContain('--to');
    expect(args).not.toContain('--shard'); // added by the wrapper
    const script = backfill.main.command!.find((c) => c.includes('JOB_COMPLETION_INDEX'));
    expect(script).toMatch(/--shard/);
    expect(script).toMatch(/index \+ 1/);
  });

  test('one shard failing does not stop the others; a configuration error stops all', () => {
    expect(backfill.job.backoffLimitPerIndex).toBeGreaterThanOrEqual(1);
    expect(failJobCodes(backfill.job)).toEqual([2]);
    const failIndex = backfill.job.podFailurePolicy!.rules.find((r) => r.action === 'FailIndex');
    expect(failIndex?.onExitCodes?.values).toEqual([1, 3]); // a refusal or a held lock: no retry, other shards go on
  });

  test("the wrapper runs under the image's init and node, in its WORKDIR, with no shell", () => {
    const command = backfill.main.command!;
    const image = entrypoint(dockerfile);
    // ENTRYPOINT is [init…, node, cli]; the wrapper keeps init and node and replaces the cli.
    expect(command.slice(0, image.length - 1)).toEqual(image.slice(0, -1));
    expect(command.some((c) => /(^|\/)(ba|da)?sh$/.test(c))).toBe(false);
    expect(command.at(-1)).toBe('--'); // so that CLI flags after it are never taken as node's
    const workdir = lastIn(dockerfile, runtimeStage, 'WORKDIR');
    expect(backfill.main.workingDir).toBe(workdir);
    expect(image.at(-1)).toBe(`${workdir}/dist/cli.js`);
    expect(command.find((c) => c.includes('JOB_COMPLETION_INDEX'))).toContain("import('./dist/cli.js')");
  });
});

describe('the Cloud SQL Auth Proxy component', () => {
  const patches = manifests.filter((m) => m.file.startsWith('components/cloud-sql-proxy/') && !isKustomization(m.object));

  test('adds the same proxy, as a native sidecar with a startup probe, to every CronJob and Job', () => {
    const pods = patches.filter((m) => m.object.kind === 'CronJob' || m.object.kind === 'Job').map((m) => patchedPod(m.object));
    expect(pods).toHaveLength(2);
    const [first, second] = pods.map((p) => p.initContainers);
    expect(first).toEqual(second);
    const proxy = first!.find((c) => c.name === 'cloud-sql-proxy')!;
    expect(() => validateContainer(proxy)).not.toThrow();
    expect(proxy.restartPolicy).toBe('Always');
    expect(proxy.image).toMatch(/^gcr\.io\/cloud-sql-connectors\/cloud-sql-proxy:2\.\d+\.\d+$/);
    expect(proxy.startupProbe?.httpGet?.path).toBe('/startup');
    expect(proxy.args).toEqual(expect.arrayContaining(['--exit-zero-on-sigterm', '--port=5432', '--health-check']));
    expect(proxy.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const component = kustomizations.find((m) => m.file === 'components/cloud-sql-proxy/kustomization.yaml')!;
    expect(component.object.kind).toBe('Component');
  });
});

const kubectl = kubectlAvailable();

describe.skipIf(!kubectl)('rendered with kubectl kustomize', () => {
  const rendered = Object.fromEntries(['.', 'cloud-sql', 'backfill', 'monitoring'].map((dir) => [dir, kustomize(dir)]));

  test.each(Object.keys(rendered))('%s: every object validates, strictly, and the image is set', (dir) => {
    const list = rendered[dir]!;
    expect(list.length).toBeGreaterThan(0);
    for (const object of list) expect(() => validateObject(object)).not.toThrow();
    expect(strictFieldErrors(list.map((object, i) => ({ label: `${dir}#${i} ${kindOf(object)}`, object })))).toEqual([]);
    const image = (
      kustomizations.find((m) => m.file === 'components/image/kustomization.yaml')!.object.images as { newName: string; newTag: string }[]
    )[0]!;
    const workloads = workloadsOf(list.map((object, i) => ({ label: `${dir}#${i}`, object })));
    expect(workloads.length > 0 || dir === 'monitoring').toBe(true);
    for (const w of workloads) {
      expect(w.main.image).toBe(`${image.newName}:${image.newTag}`);
    }
    expect(list.some((o) => o.kind === 'Secret')).toBe(false);
  });

  test('the standing deployment: its namespace, two CronJobs, the migrate Job, and the objects they reference', () => {
    const list = rendered['.']!;
    expect(list.map((o) => `${String(o.kind)}/${String((o.metadata as { name: string }).name)}`).sort()).toEqual([
      'ConfigMap/aggregate-features-daily-config',
      'CronJob/aggregate-features-daily',
      'CronJob/aggregate-features-verify',
      'Job/aggregate-features-migrate',
      'Namespace/features',
      'ServiceAccount/aggregate-features-daily',
    ]);
    // kubectl apply creates the Namespace before the objects in it.
    expect(list[0]!.kind).toBe('Namespace');
  });

  test.each(Object.keys(rendered))('%s: every namespaced object lands in the namespace of base/namespace.yaml', (dir) => {
    const namespace = (byName('v1 Namespace', 'features').metadata as { name: string }).name;
    for (const object of rendered[dir]!.filter((o) => o.kind !== 'Namespace')) {
      expect((object.metadata as { namespace?: string }).namespace, `${dir} ${String(object.kind)}`).toBe(namespace);
    }
  });

  test('cloud-sql: every pod gets the proxy sidecar; the job container is unchanged', () => {
    const plain = workloadsOf(rendered['.']!.map((object, i) => ({ label: String(i), object })));
    const withProxy = workloadsOf(rendered['cloud-sql']!.map((object, i) => ({ label: String(i), object })));
    expect(withProxy).toHaveLength(plain.length);
    withProxy.forEach((w, i) => {
      expect(w.pod.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([['cloud-sql-proxy', 'Always']]);
      expect(w.pod.containers).toEqual(plain[i]!.pod.containers);
    });
    const account = rendered['cloud-sql']!.find((o) => o.kind === 'ServiceAccount') as {
      metadata: { annotations?: Record<string, string> };
    };
    expect(account.metadata.annotations?.['iam.gke.io/gcp-service-account']).toMatch(/@.*\.iam\.gserviceaccount\.com$/);
  });
});
