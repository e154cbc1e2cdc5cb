/**
 * The PrometheusRule of the Prometheus Operator (monitoring.coreos.com/v1), as far as the
 * deployment uses it: a TypeScript type for the strict field check of kubernetes.ts and a
 * validator with the CRD's required fields and types. kubernetes-models ships no model of it (the
 * operator's models are a separate package built for a newer kubernetes-models); the rules
 * themselves are checked by promtool (test/deploy/alerts.test.ts).
 */
import type { INamespace } from 'kubernetes-models/v1/Namespace';

/** ObjectMeta, as kubernetes-models types it (the package does not export it by itself). */
type IObjectMeta = NonNullable<INamespace['metadata']>;

export interface IRule {
  alert?: string;
  record?: string;
  expr: string | number;
  for?: string;
  keep_firing_for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface IRuleGroup {
  name: string;
  interval?: string;
  limit?: number;
  partial_response_strategy?: string;
  rules: IRule[];
}

export interface IPrometheusRule {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'PrometheusRule';
  metadata: IObjectMeta;
  spec: { groups: IRuleGroup[] };
}

const duration = /^(0|(\d+(ms|s|m|h|d|w|y))+)$/;

/** Throws naming the first field that the CRD's schema would reject. */
export function validatePrometheusRule(object: unknown): void {
  const fail = (message: string) => {
    throw new Error(`PrometheusRule: ${message}`);
  };
  const rule = object as Partial<IPrometheusRule>;
  if (typeof rule.metadata?.name !== 'string' || rule.metadata.name === '') fail('metadata.name is required');
  const groups = rule.spec?.groups;
  if (!Array.isArray(groups) || groups.length === 0) fail('spec.groups must be a non-empty list');
  const names = new Set<string>();
  for (const [g, group] of groups!.entries()) {
    if (typeof group.name !== 'string' || group.name === '') fail(`spec.groups[${g}].name is required`);
    if (names.has(group.name)) fail(`spec.groups[${g}].name ${group.name} is not unique`);
    names.add(group.name);
    if (!Array.isArray(group.rules)) fail(`spec.groups[${g}].rules must be a list`);
    for (const [r, item] of group.rules.entries()) {
      const at = `spec.groups[${g}].rules[${r}]`;
      if ((item.alert === undefined) === (item.record === undefined)) fail(`${at} needs exactly one of alert and record`);
      if (typeof item.expr !== 'string' && typeof item.expr !== 'number') fail(`${at}.expr is required`);
      for (const key of ['for', 'keep_firing_for'] as const) {
        if (item[key] !== undefined && !duration.test(item[key])) fail(`${at}.${key} ${item[key]} is not a duration`);
      }
      for (const key of ['labels', 'annotations'] as const) {
        for (const [name, value] of Object.entries(item[key] ?? {})) {
          if (typeof value !== 'string') fail(`${at}.${key}.${name} must be a string`);
        }
      }
    }
  }
}
