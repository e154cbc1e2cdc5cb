/**
 * The newest-night check of `report`: FAIL when the night the nightly run should have written
 * by now (yesterday in AGG_TIMEZONE, after AGG_REPORT_NIGHT_GRACE_HOURS) is not covered by any
 * successful run or backfill, whatever ran recently: a run that finished an hour ago for a day
 * a year back has not written last night. Judged by what the runs covered (anchor and finish),
 * not only by when they ran (the `stale` check).
 */

/** One shard's newest covered night, as sql/night.ts `nightCoverage` returns it. */
export interface ShardNight {
  readonly expected_night: string;
  readonly shard: string;
  /** The newest day a successful run or backfill covered completely; null if none succeeded. */
  readonly covered_through: string | null;
  /** The day after it: the first day a catch-up writes. */
  readonly first_missing: string | null;
  readonly anchor: string | null;
  readonly finished_at: string | null;
}

/** What the check needs: each shard's coverage, the zone and the grace (for the message). */
export interface NightInput {
  readonly shards: readonly ShardNight[];
  readonly timezone: string;
  readonly graceHours: number;
}

/** A finding of the check, in the verdict's shape. */
export interface NightFinding {
  readonly status: 'FAIL';
  readonly check: 'night';
  readonly message: string;
}

/** A FAIL per shard whose newest covered night is older than the expected one. */
export function judgeNight(input: NightInput | undefined): NightFinding[] {
  if (input === undefined) return [];
  return input.shards.flatMap((s) => {
    // A shard without any success is the `no_success` check's finding.
    if (s.covered_through === null || s.first_missing === null || s.covered_through >= s.expected_night) return [];
    const label = input.shards.length > 1 ? ` of shard ${s.shard}` : '';
    const ran =
      s.anchor === s.covered_through ? `anchor ${s.anchor}` : `anchor ${s.anchor}, finished ${s.finished_at} before that day ended`;
    return [
      {
        status: 'FAIL',
        check: 'night',
        message:
          `night ${s.expected_night} is missing${label}: successful runs cover the days up to ${s.covered_through} (${ran}); ` +
          `expected ${input.graceHours} h after it ends in ${input.timezone} (AGG_REPORT_NIGHT_GRACE_HOURS); ` +
          `write it with backfill --from ${s.first_missing} --to ${s.expected_night}`,
      },
    ];
  });
}
