/**
 * The order test files start in: the longest first, so that the two workers finish together
 * instead of one starting a long file when the other is nearly done. vitest orders by the
 * durations of the last run when it has them; a fresh clone (CI) has none, so the files known
 * to be long come first in this order, then the rest as vitest orders them.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const longFirst = [
  'test/hardening/kill.test.ts',
  'test/datasets.test.ts',
  'test/hardening/concurrency.test.ts',
  'test/theta.property.test.ts',
  'test/backfill.test.ts',
  'test/backfill-cli.test.ts',
  'test/guards.test.ts',
  'test/report.test.ts',
  'test/explain.test.ts',
  'test/theta.test.ts',
];

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const index = longFirst.findIndex((name) => file.moduleId.endsWith(name));
      return index === -1 ? longFirst.length : index;
    };
    return sorted
      .map((file, order) => ({ file, order }))
      .sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order)
      .map(({ file }) => file);
  }
}
