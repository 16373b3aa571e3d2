import { describe, expect, it } from 'vitest';
import { KfError } from '../../src/core/errors.js';
import {
  ALLOW_SHORTER_FLAG,
  endsEarlier,
  enforceLifetimes,
  lifetimeViolations,
  outlivesIssuer,
  outlivesIssuerProblem,
} from '../../src/core/lifetime.js';

// The one lifetime rule (core/lifetime): no earlier NotAfter than now, no certificate past its CA.

const d = (s: string) => new Date(s);

describe('lifetime rule', () => {
  it('compares at second precision, as certificates store NotAfter', () => {
    expect(outlivesIssuer(d('2030-01-01T00:00:00.900Z'), d('2030-01-01T00:00:00Z'))).toBe(false);
    expect(outlivesIssuer(d('2030-01-01T00:00:01Z'), d('2030-01-01T00:00:00Z'))).toBe(true);
    expect(endsEarlier(d('2030-01-01T00:00:00Z'), d('2030-01-01T00:00:00.500Z'))).toBe(false);
    expect(endsEarlier(d('2029-12-31T23:59:59Z'), d('2030-01-01T00:00:00Z'))).toBe(true);
  });

  it('names both dates for a shorter replacement (ca extend --validity 200d under a 10-year CA)', () => {
    const v = lifetimeViolations({
      name: 'the extended ca.crt',
      notAfter: d('2027-06-19T10:00:00Z'),
      current: { name: 'the CA in /pki/ca.crt', notAfter: d('2036-01-01T00:00:00Z') },
    });
    expect(v).toEqual([
      'the extended ca.crt would end 2027-06-19T10:00:00Z, earlier than the CA in /pki/ca.crt does now (2036-01-01T00:00:00Z)',
    ]);
  });

  it('names the leaf and both dates for a CA that would end before what it signed', () => {
    const v = lifetimeViolations({
      name: 'the extended ca.crt',
      notAfter: d('2030-01-01T00:00:00Z'),
      issued: [
        { name: 'apiserver.crt', notAfter: d('2031-01-01T00:00:00Z') },
        { name: 'front-proxy-client.crt', notAfter: d('2029-01-01T00:00:00Z') },
      ],
    });
    expect(v).toEqual([
      'the extended ca.crt would end 2030-01-01T00:00:00Z, before apiserver.crt that it signed (2031-01-01T00:00:00Z)',
    ]);
  });

  it('names the CA for a leaf that would outlive it (kubelet-cert 199y under a 10-year CA)', () => {
    const v = lifetimeViolations({
      name: 'the new kubelet client certificate',
      notAfter: d('2225-01-01T00:00:00Z'),
      issuer: { name: 'ca.crt', notAfter: d('2036-01-01T00:00:00Z') },
    });
    expect(v).toEqual([
      'the new kubelet client certificate would end 2225-01-01T00:00:00Z, after its CA ca.crt (2036-01-01T00:00:00Z)',
    ]);
    expect(
      lifetimeViolations({
        name: 'x',
        notAfter: d('2030-01-01T00:00:00Z'),
        issuer: { name: 'ca', notAfter: d('2030-01-01T00:00:00Z') },
      }),
    ).toEqual([]);
  });

  it('check uses the same comparison', () => {
    expect(
      outlivesIssuerProblem(
        { name: 'a.crt', notAfter: d('2031-01-01T00:00:00Z') },
        { name: 'ca.crt', notAfter: d('2030-01-01T00:00:00Z') },
      ),
    ).toBe('ends 2031-01-01T00:00:00Z, after its CA ca.crt (2030-01-01T00:00:00Z)');
    expect(
      outlivesIssuerProblem(
        { name: 'a.crt', notAfter: d('2029-01-01T00:00:00Z') },
        { name: 'ca.crt', notAfter: d('2030-01-01T00:00:00Z') },
      ),
    ).toBeUndefined();
  });

  it('refuses by default with the first violation, the count and the flag; returns them as warnings with the flag', () => {
    const v = ['a would end 1, earlier than b does now (2)', 'c would end 3, after its CA d (4)'];
    let err: unknown;
    try {
      enforceLifetimes(v, false, 'pass a longer --validity');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KfError);
    const k = err as KfError;
    expect(k.what).toBe(`refused: ${v[0]} (and 1 more: ${v[1]})`);
    expect(k.next).toBe(
      `pass a longer --validity, or pass ${ALLOW_SHORTER_FLAG} if this is what you want; nothing was changed`,
    );
    expect(enforceLifetimes(v, true, 'x')).toEqual(v);
    expect(enforceLifetimes([], false, 'x')).toEqual([]);
  });
});
