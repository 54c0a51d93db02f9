import { describe, expect, it } from '@jest/globals';
import {
  conditionProblems,
  matchesCondition,
  type Condition,
  type SavedGroups,
} from '../../src/assignments/targeting';
import { readFixture } from '../support/fixtures';

/** GrowthBook's conformance cases: [name, condition, attributes, expected, savedGroups?]. */
const cases = readFixture<{
  evalCondition: [string, Condition, Record<string, unknown>, boolean, SavedGroups?][];
}>('growthbook-sdk-cases.json');

describe('GrowthBook evalCondition conformance (all 248 cases)', () => {
  it('has every case of the suite', () => {
    expect(cases.evalCondition).toHaveLength(248);
  });

  // Rows by index: Jest formats every argument of a row for its title, and some conditions are large.
  it.each(cases.evalCondition.map(([name], i) => [name, i] as const))('%s', (_name, i) => {
    const [, condition, attributes, expected, savedGroups] = cases.evalCondition[i];
    expect(matchesCondition(condition, attributes, savedGroups)).toBe(expected);
  });
});

describe('conditionProblems', () => {
  // The only conformance conditions refused on save: the ones the SDK can only answer "false" for a
  // malformed argument, and saved groups, which this service does not have (nor `$groups`, GrowthBook's
  // legacy top-level attribute).
  const REFUSED = new Set([
    '$groups - match',
    '$groups - no match',
    '$in - not array',
    '$nin - not array',
    '$ini - not array',
    '$nini - not array',
    'unknown operator - pass',
    '$regex invalid - pass',
    '$regex invalid - fail',
    '$inGroup passes for member of known group id',
    '$inGroup fails for non-member of known group id',
    '$inGroup fails for unknown group id',
    '$notInGroup fails for member of known group id',
    '$notInGroup passes for non-member of known group id',
    '$notInGroup passes for unknown group id',
    '$inGroup passes for properly typed data',
    '$inGroup fails for improperly typed data',
  ]);

  it('accepts every other condition of the conformance suite', () => {
    const refused = cases.evalCondition
      .filter(([, condition]) => conditionProblems(condition).length > 0)
      .map(([name]) => name);
    expect(new Set(refused)).toEqual(REFUSED);
  });

  it('names the path of an unknown operator, at any depth', () => {
    expect(conditionProblems({ $and: [{ country: 'US' }, { $or: [{ plan: { $inn: ['pro'] } }] }] })).toEqual([
      { path: ['$and', '1', '$or', '0', 'plan', '$inn'], message: expect.stringContaining('$inn') },
    ]);
    expect(conditionProblems({ $an: [] })[0].path).toEqual(['$an']);
    expect(conditionProblems({ tags: { $elemMatch: { $eqq: 1 } } })[0].path).toEqual([
      'tags',
      '$elemMatch',
      '$eqq',
    ]);
    expect(conditionProblems({ tags: { $elemMatch: { score: { $gtt: 1 } } } })[0].path).toEqual([
      'tags',
      '$elemMatch',
      'score',
      '$gtt',
    ]);
  });

  it('refuses arguments of the wrong kind', () => {
    const problem = (c: unknown) => conditionProblems(c).map((p) => `${p.path.join('.')}: ${p.message}`);
    expect(problem({ $or: { a: 1 } })).toEqual(['$or: $or takes an array of conditions']);
    expect(problem({ a: { $exists: 'yes' } })).toEqual(['a.$exists: $exists takes true or false']);
    expect(problem({ a: { $type: 'date' } })[0]).toMatch(/^a\.\$type: \$type takes one of string/);
    expect(problem({ v: { $vgt: 2 } })).toEqual(['v.$vgt: $vgt takes a version string, e.g. "1.2.3"']);
    expect(problem({ a: { $regex: '(' } })[0]).toMatch(/^a\.\$regex: is not a valid regular expression/);
    expect(problem({ a: { $gt: 1, lt: 2 } })).toEqual([
      'a.lt: operators and plain keys cannot be mixed in one object',
    ]);
    expect(problem([{ a: 1 }])[0]).toMatch(/^: must be a condition object/);
    expect(problem({ $not: [1] })[0]).toMatch(/^\$not: must be a condition object/);
  });

  it('accepts the operators of the issue, version comparisons and dot paths', () => {
    const condition = {
      $and: [
        { country: { $in: ['US', 'CA'] }, 'device.os': { $ne: 'tv' } },
        { $or: [{ age: { $gte: 18, $lt: 65 } }, { plan: { $regex: '^pro' } }] },
        { $nor: [{ banned: true }] },
        { $not: { beta: { $exists: false } } },
        { tags: { $all: ['a'], $size: { $gt: 0 }, $elemMatch: { $eq: 'a' } } },
        { appVersion: { $vgte: '2.1.0', $vlt: '3.0.0' } },
        { segment: { $nin: ['churned'] } },
      ],
    };
    expect(conditionProblems(condition)).toEqual([]);
    const unit = {
      country: 'US',
      device: { os: 'ios' },
      age: 30,
      beta: true,
      tags: ['a', 'b'],
      appVersion: '2.4.1',
      segment: 'new',
    };
    expect(matchesCondition(condition, unit)).toBe(true);
    expect(matchesCondition(condition, { ...unit, appVersion: '2.0.9' })).toBe(false);
    expect(matchesCondition(condition, { ...unit, device: { os: 'tv' } })).toBe(false);
  });

  it('lets a null condition match everybody', () => {
    expect(matchesCondition(null, {})).toBe(true);
  });
});
