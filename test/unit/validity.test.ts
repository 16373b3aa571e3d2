import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import {
  goDurationExpr,
  MAX_VALIDITY_HOURS,
  parseValidity,
  resolveValidityPair,
} from '../../src/core/validity.js';

describe('parseValidity', () => {
  it('counts a year as 365 days, in hours', () => {
    expect(parseValidity('199y')).toEqual({ hours: 199 * 8760, text: '199y' });
    expect(parseValidity('365d').hours).toBe(8760);
    expect(parseValidity('36h').hours).toBe(36);
    expect(parseValidity(' 290y ').hours).toBe(MAX_VALIDITY_HOURS);
  });
  it.each(['0y', '0h', '-1y', '-5d'])('refuses %s as not positive', (v) => {
    expect(() => parseValidity(v)).toThrow(/more than zero/);
  });
  it.each(['291y', '105851d', '2540401h', '99999999999999999999y'])('refuses %s as too long for Go', (v) => {
    expect(() => parseValidity(v, '--ca-validity')).toThrow(/--ca-validity .*more than 290y/);
  });
  it.each(['', 'y', '1.5y', '199', '199 y', '199Y', '10w', 'abc', '1e3y', '0x10y'])(
    'refuses %j as not a number with unit',
    (v) => {
      expect(() => parseValidity(v)).toThrow(UsageError);
    },
  );
  it('accepts exactly 290y and 2540400h', () => {
    expect(parseValidity('2540400h').hours).toBe(MAX_VALIDITY_HOURS);
  });
});

describe('resolveValidityPair', () => {
  it('defaults to 199y leaf and 200y CA', () => {
    const v = resolveValidityPair();
    expect(v.leaf.hours).toBe(199 * 8760);
    expect(v.ca.hours).toBe(200 * 8760);
  });
  it('refuses a leaf longer than the CA, equal is fine', () => {
    expect(() => resolveValidityPair('201y', '200y')).toThrow(
      /--validity 201y .*longer than --ca-validity 200y/,
    );
    expect(resolveValidityPair('73000d', '200y').leaf.hours).toBe(200 * 8760);
  });
});

describe('goDurationExpr', () => {
  it('writes years, days or hours in kubeadm style', () => {
    expect(goDurationExpr(199 * 8760)).toBe('time.Hour * 24 * 365 * 199');
    expect(goDurationExpr(8760)).toBe('time.Hour * 24 * 365');
    expect(goDurationExpr(48)).toBe('time.Hour * 24 * 2');
    expect(goDurationExpr(25)).toBe('time.Hour * 25');
    expect(goDurationExpr(24, 'gotime')).toBe('gotime.Hour * 24 * 1');
  });
  it('stays below int64 nanoseconds for the largest validity', () => {
    const ns = BigInt(MAX_VALIDITY_HOURS) * 3_600_000_000_000n;
    expect(ns < 2n ** 63n - 1n).toBe(true);
    expect(() => goDurationExpr(MAX_VALIDITY_HOURS + 1)).toThrow(RangeError);
  });
});
