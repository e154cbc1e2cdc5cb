import { describe, expect, test } from 'vitest';
import { parseQualifiedName } from '../src/sql/identifiers.js';
import { ident, join, raw, sql } from '../src/sql/tag.js';

describe('the sql tag', () => {
  test('every value is a parameter, numbered in order across nested fragments', () => {
    const inner = sql`b = ${2} and c = ${'x'}`;
    const statement = sql`select * from t where a = ${1} and (${inner}) and d = ${null}`;
    expect(statement.text).toBe('select * from t where a = $1 and (b = $2 and c = $3) and d = $4');
    expect(statement.values).toEqual([1, 2, 'x', null]);
  });

  test('the same fragment used twice is numbered again, with its values again', () => {
    const shard = sql`mod(h, ${4}) = ${2}`;
    const statement = sql`${shard} or ${shard}`;
    expect(statement.text).toBe('mod(h, $1) = $2 or mod(h, $3) = $4');
    expect(statement.values).toEqual([4, 2, 4, 2]);
  });

  test('a name is quoted, never bound; raw text goes in as it is', () => {
    const table = parseQualifiedName('"My Schema"."At""tempt"', 'AGG_SOURCE');
    expect(sql`select 1 from ${ident(table)} where ${raw('x')} = ${'"; drop table t; --'}`).toMatchObject({
      text: 'select 1 from "My Schema"."At""tempt" where x = $1',
      values: ['"; drop table t; --'],
    });
    expect(ident('we"ird').text).toBe('"we""ird"');
  });

  test('join puts a separator between fragments, and nothing for none', () => {
    expect(join([sql`a = ${1}`, sql`b = ${2}`], raw(' and ')).text).toBe('a = $1 and b = $2');
    expect(join([]).text).toBe('');
  });
});
