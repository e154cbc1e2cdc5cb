/** Reading the plans PostgreSQL chooses (EXPLAIN, nothing run), for tests that check a plan's shape. */
import type { Session } from '../../src/database/db.js';
import { type Sql, sql } from '../../src/sql/tag.js';

/** One node of EXPLAIN (FORMAT JSON), with the fields the tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'CTE Name'?: string;
  'Parent Relationship'?: string;
  Filter?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

/** The plan PostgreSQL chooses for `statement` (EXPLAIN, nothing run). */
export async function planOf(session: Session, statement: Sql): Promise<PlanNode> {
  const explained = await session.query<{ 'QUERY PLAN': unknown }>(sql`explain (format json) ${statement}`);
  const json = explained.rows[0]!['QUERY PLAN'];
  return ((typeof json === 'string' ? JSON.parse(json) : json) as [{ Plan: PlanNode }])[0].Plan;
}

/** Every node of a plan, depth first. */
export function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}
