// ttl-fetch's decisions without Node-RED: settings, freshness, stale-if-error, redirects, how long an answer is kept.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../nodes/lib/errors';
import type { Entry } from '../../nodes/lib/store';
import {
  afterRedirect,
  bodyAs,
  fetchSettings,
  judgeCached,
  keepSecondsFor,
  retryableStatus,
  type StoredResponse,
  servesStale,
  type TtlFetchConfig,
  UpstreamError,
} from '../../nodes/red/fetch-rules';

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const config = (extra: Partial<TtlFetchConfig> = {}): TtlFetchConfig =>
  ({ id: 'f1', type: 'ttl-fetch', url: 'https://api.example.org/v1/weather', ttl: 5, ttlUnits: 'minutes', ...extra }) as TtlFetchConfig;

function answer(fetchedAt: number, extra: Partial<StoredResponse> = {}): Entry {
  const value: StoredResponse = { kind: 'json', body: { t: 21 }, statusCode: 200, contentType: 'application/json', fetchedAt, ...extra };
  return { value, storedAt: fetchedAt, expiresAt: null };
}

describe('ttl-fetch settings', () => {
  it('derives TTL, timeout, size limit and how long an answer is kept', () => {
    const s = fetchSettings(config({ timeout: 2, maxResponseMb: 1 }), undefined);
    assert.equal(s.ttlMs, 300_000);
    assert.equal(s.timeoutMs, 2000);
    assert.equal(s.maxResponseBytes, 1024 * 1024);
    assert.equal(s.keepSeconds, 300 + 86_400, 'a stale copy is kept a day beyond its TTL');
    assert.equal(s.derived, true);
    assert.equal(fetchSettings(config({ staleIfError: false }), undefined).keepSeconds, 300);
  });

  it('keeps a stale copy at least a day and at least 9 TTLs beyond the TTL', () => {
    assert.equal(keepSecondsFor(60, true), 60 + 86_400);
    assert.equal(keepSecondsFor(86_400, true), 86_400 * 10);
    assert.equal(keepSecondsFor(60, false), 60);
  });

  it('refuses every bad field with an InputError naming it', () => {
    const bad: [Partial<TtlFetchConfig>, RegExp][] = [
      [{ method: 'DELETE' }, /method/i],
      [{ ttl: 0 }, /ttl/i],
      [{ ttlUnits: 'weeks' }, /unit/i],
      [{ timeout: 0 }, /timeout/i],
      [{ maxResponseMb: 5000 }, /size limit/i],
      [{ returnType: 'xml' }, /return/i],
    ];
    for (const [fields, pattern] of bad) {
      assert.throws(
        () => fetchSettings(config(fields), undefined),
        (error: unknown) => error instanceof InputError && pattern.test((error as Error).message),
        JSON.stringify(fields),
      );
    }
  });

  it('sends a secret only to the fixed origin of its URL, and never with a header of the same name', () => {
    const s = fetchSettings(config({ headers: [{ name: 'authorization', value: 'plain' }] }), 'Bearer s3cret');
    assert.equal(s.secretOrigin, 'https://api.example.org');
    assert.notEqual(s.headerCredential, '');
    assert.deepEqual(s.headers, {}, 'the listed header of the same name gives way to the secret');
    assert.throws(() => fetchSettings(config({ url: 'https://{{host}}/x' }), 'k'), InputError, 'no fixed origin: the secret could go anywhere');
    assert.throws(() => fetchSettings(config({ url: 'https://api.example.org/?appid={{secret}}' }), undefined), InputError, '{{secret}} without a secret');
    const inUrl = fetchSettings(config({ url: 'https://api.example.org/?appid={{secret}}' }), 'k3y');
    assert.equal(inUrl.headerCredential, '');
    assert.notEqual(inUrl.urlCredential, '');
  });
});

describe('freshness', () => {
  const ttlMs = 60_000;

  it('is fresh from the fetch until the TTL ends, then stale', () => {
    assert.deepEqual(judgeCached(answer(T0), '', T0, ttlMs).fresh, true);
    assert.deepEqual(judgeCached(answer(T0), '', T0 + ttlMs - 1, ttlMs).fresh, true);
    assert.deepEqual(judgeCached(answer(T0), '', T0 + ttlMs, ttlMs).fresh, false);
  });

  it('takes an answer stamped in the future (the clock went back) as stale', () => {
    const judged = judgeCached(answer(T0 + 10_000), '', T0, ttlMs);
    assert.ok(judged.entry);
    assert.equal(judged.fresh, false);
  });

  it('measures age from the fetch, not from a store stamp moved later', () => {
    const entry = { ...answer(T0), storedAt: T0 + 50_000 };
    assert.equal(judgeCached(entry, '', T0 + ttlMs + 1, ttlMs).fresh, false);
  });

  it('never gives an answer fetched with another credential, or none, not even as a stale copy', () => {
    const withSecret = answer(T0, { credential: 'abc' });
    assert.equal(judgeCached(withSecret, '', T0, ttlMs).entry, undefined);
    assert.equal(judgeCached(withSecret, 'other', T0, ttlMs).entry, undefined);
    assert.ok(judgeCached(withSecret, 'abc', T0, ttlMs).entry);
    assert.equal(judgeCached(answer(T0), 'abc', T0, ttlMs).entry, undefined);
  });

  it('ignores what is not a stored answer', () => {
    assert.equal(judgeCached({ value: 'text', storedAt: T0, expiresAt: null }, '', T0, ttlMs).entry, undefined);
    assert.equal(judgeCached(undefined, '', T0, ttlMs).entry, undefined);
  });
});

describe('stale-if-error', () => {
  const stale = judgeCached(answer(T0), '', T0 + 120_000, 60_000);
  const unreachable = new UpstreamError('UPSTREAM_UNREACHABLE', 'down', true);

  it('serves the kept copy when the upstream fails in a way worth retrying', () => {
    assert.equal(servesStale(unreachable, stale, true), true);
    assert.equal(servesStale(new UpstreamError('UPSTREAM_HTTP', '503', true, 503), stale, true), true);
  });

  it('passes the error on when it is off, without a copy, for a refusal (4xx), or for an error that is not the upstream', () => {
    assert.equal(servesStale(unreachable, stale, false), false);
    assert.equal(servesStale(unreachable, { entry: undefined, fresh: false }, true), false);
    assert.equal(servesStale(new UpstreamError('UPSTREAM_HTTP', '404', false, 404), stale, true), false);
    assert.equal(servesStale(new Error('disk'), stale, true), false);
  });

  it('counts the server’s trouble, timeouts and rate limits as worth retrying, not refusals', () => {
    assert.deepEqual([500, 503, 408, 429, 400, 401, 404].map(retryableStatus), [true, true, true, true, false, false, false]);
  });
});

describe('redirects and answers', () => {
  it('follows a redirect with the method browsers use', () => {
    assert.deepEqual(afterRedirect(303, 'POST'), { method: 'GET', keepBody: false });
    assert.deepEqual(afterRedirect(303, 'HEAD'), { method: 'HEAD', keepBody: true });
    assert.deepEqual(afterRedirect(302, 'POST'), { method: 'GET', keepBody: false });
    assert.deepEqual(afterRedirect(301, 'GET'), { method: 'GET', keepBody: true });
    assert.deepEqual(afterRedirect(307, 'POST'), { method: 'POST', keepBody: true });
  });

  it('hands out a private copy of a stored body, in the form asked for', () => {
    const stored = answer(T0).value as StoredResponse;
    const copy = bodyAs(stored, 'json') as { t: number };
    copy.t = 99;
    assert.deepEqual(stored.body, { t: 21 });
    assert.equal(bodyAs(stored, 'text'), '{"t":21}');
    assert.deepEqual(bodyAs(stored, 'buffer'), Buffer.from('{"t":21}'));
  });
});
