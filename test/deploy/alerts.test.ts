/**
 * The alert rules: deploy/prometheus/aggregate-features-daily.rules.yml and the PrometheusRule of
 * deploy/k8s/monitoring hold the same groups; every metric they read is one the job publishes
 * (or one of kube-state-metrics); and promtool accepts them (`check rules`) and passes their unit
 * tests (`test rules`, alerts.promtool.yml: each alert fires on trouble and not on health), which
 * fail when a rule is broken on purpose. promtool comes with Debian's `prometheus` package: the
 * promtool tests are skipped where it is missing, except in CI (CI=true), which installs it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { outcomeSamples } from '../../src/observe/metrics.js';
import { testTempDir } from '../support/resources.js';
import { parseYaml, repoRoot } from '../support/kubernetes.js';
import type { IPrometheusRule, IRuleGroup } from '../support/prometheus-rule.js';

const rulesFile = join(repoRoot, 'deploy/prometheus/aggregate-features-daily.rules.yml');
const unitTests = join(repoRoot, 'test/deploy/alerts.promtool.yml');
const rules = parseYaml(readFileSync(rulesFile, 'utf8'), rulesFile)[0] as { groups: IRuleGroup[] };
const prometheusRule = parseYaml(
  readFileSync(join(repoRoot, 'deploy/k8s/monitoring/prometheusrule.yaml'), 'utf8'),
  'prometheusrule.yaml',
)[0] as unknown as IPrometheusRule;
const alerts = rules.groups.flatMap((g) => g.rules);

/** The metric names the job publishes: every family a run's outcome can carry. */
const published = new Set(
  outcomeSamples({
    command: 'backfill',
    shard: { index: 1, count: 1 },
    success: true,
    durationMs: 1,
    finishedAt: 1,
    counts: { combinations: 1, inserted: 1, updated: 0, unchanged: 0, deleted: 0, failed: 0 },
    window: { startsAt: 0, endsAt: 86400 },
    rippleUpdated: 0,
  }).map((s) => `aggregate_features_${s.family}`),
);

describe('the alert rules', () => {
  test('the PrometheusRule holds exactly the groups of the rules file', () => {
    expect(prometheusRule.spec.groups).toEqual(rules.groups);
  });

  test('alert on a failed nightly run, a missed night, missing metrics and a held-back day', () => {
    const byName = new Map(alerts.map((a) => [a.alert, String(a.expr)]));
    expect(byName.get('AggregateFeaturesNightlyRunFailed')).toMatch(/^aggregate_features_run_success\{command="run"\} == 0$/);
    expect(byName.get('AggregateFeaturesNightMissed')).toMatch(
      /aggregate_features_last_success_timestamp_seconds\{command="run"\}.*> 26 \* 3600/,
    );
    expect(byName.get('AggregateFeaturesNoMetrics')).toMatch(/^absent\(aggregate_features_last_success_timestamp_seconds/);
    expect(byName.get('AggregateFeaturesDayHeldBack')).toMatch(/\(aggregate_features_held_back_days\) > 0$/);
    for (const alert of alerts) {
      expect(['page', 'ticket']).toContain(alert.labels?.severity);
      expect(alert.annotations?.summary, alert.alert).toBeTruthy();
    }
  });

  test('read only metrics the job publishes, and those of kube-state-metrics', () => {
    const read = new Set(alerts.flatMap((a) => [...String(a.expr).matchAll(/\b(aggregate_features_\w+|kube_\w+)\b/g)].map((m) => m[1]!)));
    expect(published.size).toBeGreaterThanOrEqual(10);
    // aggregate_features_held_back_days is set by the runs' guards (a day held back), not by a
    // run's outcome, so outcomeSamples does not list it.
    const unknown = [...read].filter(
      (name) =>
        !published.has(name) && name !== 'aggregate_features_held_back_days' && !['kube_job_failed', 'kube_job_created'].includes(name),
    );
    expect(unknown).toEqual([]);
  });
});

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const inCi = process.env.CI === 'true';
if (!promtool && !inCi)
  console.warn("promtool is not installed: the alert rules are not checked with it (CI installs Debian's prometheus)");

describe.skipIf(!promtool && !inCi)('promtool', () => {
  const run = (...args: string[]) => spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });

  test("check rules: the rules file and the PrometheusRule's groups are valid", () => {
    const checked = run('check', 'rules', rulesFile);
    expect(checked.error, 'promtool is not installed (apt-get install prometheus)').toBeUndefined();
    expect(checked.status, checked.stdout + checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(new RegExp(`SUCCESS: ${alerts.length} rules found`));
    const fromCrd = join(testTempDir('alerts'), 'prometheusrule.rules.yml');
    writeFileSync(fromCrd, JSON.stringify({ groups: prometheusRule.spec.groups }));
    expect(run('check', 'rules', fromCrd).status).toBe(0);
  });

  test('test rules: each alert fires on trouble and stays quiet on health', () => {
    const tested = run('test', 'rules', unitTests);
    expect(tested.status, tested.stdout + tested.stderr).toBe(0);
    // Every alert has a case that expects it to fire.
    const cases = readFileSync(unitTests, 'utf8');
    for (const alert of alerts)
      expect(cases, `${alert.alert} has no unit test`).toMatch(
        new RegExp(`alertname: ${alert.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`),
      );
  });

  test('the unit tests fail when a rule is broken (so they cannot pass silently)', () => {
    const dir = testTempDir('alerts-broken');
    const brokenRules = readFileSync(rulesFile, 'utf8')
      .replace('> 26 * 3600', '> 30 * 3600')
      .replace('(aggregate_features_held_back_days) > 0', '(aggregate_features_held_back_days) > 1');
    writeFileSync(join(dir, 'rules.yml'), brokenRules);
    writeFileSync(
      join(dir, 'tests.yml'),
      readFileSync(unitTests, 'utf8').replace('../../deploy/prometheus/aggregate-features-daily.rules.yml', 'rules.yml'),
    );
    const tested = run('test', 'rules', join(dir, 'tests.yml'));
    expect(tested.status).not.toBe(0);
    expect(tested.stdout + tested.stderr).toMatch(/AggregateFeaturesNightMissed/);
    expect(tested.stdout + tested.stderr).toMatch(/AggregateFeaturesDayHeldBack/);
  });
});
