// What the admin API says about one entry: its stamps, what it is (a cooldown, a count, a cached HTTP
// answer or a plain value) and a preview of its value in the form the editor's debug sidebar shows.
import { types } from 'node:util';
import { DateTime } from 'luxon';
import type { InspectedEntry, KeyInfo } from '../lib/store';
import { isStoredResponse } from './fetch-rules';
import { isoInZone } from './time';

export const COOLDOWN_PREFIX = 'cooldown:';
export const COUNTER_PREFIX = 'counter:';
export const FETCH_PREFIX = 'fetch:';

export type EntryKind = 'cooldown' | 'counter' | 'fetch' | 'value';

/** What a key holds, by the prefix the nodes give their keys (a ttl-fetch key of its own is told by its value). */
export function kindOfKey(key: string): EntryKind {
  if (key.startsWith(COOLDOWN_PREFIX)) return 'cooldown';
  if (key.startsWith(COUNTER_PREFIX)) return 'counter';
  if (key.startsWith(FETCH_PREFIX)) return 'fetch';
  return 'value';
}

/** State the nodes keep (counts, cooldowns): never evicted, and changed only in the ways the nodes change it. */
export function isNodeState(key: string): boolean {
  const kind = kindOfKey(key);
  return kind === 'cooldown' || kind === 'counter';
}

export { isStoredResponse } from './fetch-rules';

/** Whether a value is plain JSON (what an edit in the editor can give back exactly). */
export function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => isPlainJson(v, depth + 1));
}

/** Limits of a preview: the editor shows it, the full value is a download. */
export const PREVIEW = { stringChars: 10_000, items: 500, nodes: 20_000, depth: 32 };

type Preview = null | boolean | number | string | Preview[] | { [key: string]: Preview };

/**
 * A value as JSON the editor's object viewer (RED.utils.createObjectElement, as in the debug sidebar)
 * shows: Buffers, Sets, long arrays, BigInts and non-finite numbers in its encoded forms, dates as
 * ISO text; long strings, long lists and deep or large values cut, with `truncated` set.
 */
export function previewOf(value: unknown): { value: Preview; truncated: boolean } {
  const state = { nodes: 0, truncated: false };
  const cut = (): Preview => {
    state.truncated = true;
    return '…';
  };
  const walk = (v: unknown, depth: number): Preview => {
    if (++state.nodes > PREVIEW.nodes) return cut();
    if (v === null || v === undefined) return null;
    switch (typeof v) {
      case 'string':
        if (v.length <= PREVIEW.stringChars) return v;
        state.truncated = true;
        return `${v.slice(0, PREVIEW.stringChars)}…`;
      case 'boolean':
        return v;
      case 'number':
        return Number.isFinite(v) ? v : { __enc__: true, type: 'number', data: String(v) };
      case 'bigint':
        return { __enc__: true, type: 'bigint', data: v.toString() };
      case 'object':
        break;
      default:
        return String(v);
    }
    const obj = v as object;
    if (types.isDate(obj)) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
    if (DateTime.isDateTime(obj)) return `${obj.toISO()} [${obj.zoneName}]`;
    if (Buffer.isBuffer(obj)) {
      if (obj.length > PREVIEW.items) state.truncated = true;
      return { __enc__: true, type: 'Buffer', data: [...obj.subarray(0, PREVIEW.items)], length: obj.length };
    }
    if (depth >= PREVIEW.depth) return cut();
    if (Array.isArray(obj) || types.isSet(obj)) {
      const items = Array.isArray(obj) ? obj : [...obj];
      const shown = items.slice(0, PREVIEW.items).map((item) => walk(item, depth + 1));
      if (items.length > PREVIEW.items) state.truncated = true;
      if (types.isSet(obj)) return { __enc__: true, type: 'set', data: shown, length: items.length };
      return items.length > PREVIEW.items ? { __enc__: true, type: 'array', data: shown, length: items.length } : shown;
    }
    const out: Record<string, Preview> = {};
    const pairs: [string, unknown][] = types.isMap(obj) ? [...obj].map(([k, item]) => [String(k), item]) : Object.entries(obj);
    for (const [k, item] of pairs.slice(0, PREVIEW.items)) out[k] = walk(item, depth + 1);
    if (pairs.length > PREVIEW.items) {
      state.truncated = true;
      out['…'] = `${pairs.length - PREVIEW.items} more`;
    }
    return out;
  };
  const shown = walk(value, 0);
  return { value: shown, truncated: state.truncated };
}

/** A key of a listing. */
export function describeKey(info: KeyInfo, at: number) {
  return {
    key: info.key,
    kind: kindOfKey(info.key),
    storedAt: info.storedAt,
    expiresAt: info.expiresAt,
    remaining: info.expiresAt === null ? null : Math.max(0, info.expiresAt - at),
    size: info.size,
  };
}

/** Everything the entry view shows; `url` explains a ttl-fetch answer, `zone` dates it. */
export function describeEntry(key: string, entry: InspectedEntry, at: number, zone: string, url: string | undefined) {
  const value = entry.value;
  let kind = kindOfKey(key);
  if (kind === 'value' && isStoredResponse(value)) kind = 'fetch';
  const base = {
    key,
    kind,
    storedAt: entry.storedAt,
    storedAtText: isoInZone(entry.storedAt, zone),
    expiresAt: entry.expiresAt,
    expiresAtText: isoInZone(entry.expiresAt, zone),
    remaining: entry.expiresAt === null ? null : Math.max(0, entry.expiresAt - at),
    size: entry.size,
    evictable: entry.evictable,
    zone,
    /** Whether the editor may offer an edit of the value as JSON. */
    editable: kind === 'value' && isPlainJson(value),
  };
  if (kind === 'cooldown') {
    // without options the gate keeps the time of the last pass; with a limit, a calendar period, only on
    // change or summaries, a record of the passes, the period's count and what was held back
    const classic = typeof value === 'number' && Number.isFinite(value);
    const state = (!classic && value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
    const passes = Array.isArray(state.passes) ? state.passes.filter((p): p is number => typeof p === 'number' && Number.isFinite(p)) : [];
    const lastPassed = classic ? (value as number) : typeof state.lastPass === 'number' ? state.lastPass : passes.length > 0 ? Math.max(...passes) : null;
    const held = state.held && typeof state.held === 'object' ? (state.held as Record<string, unknown>) : undefined;
    return {
      ...base,
      cooldown: {
        key: key.slice(COOLDOWN_PREFIX.length),
        classic,
        lastPassed,
        lastPassedText: isoInZone(lastPassed, zone),
        elapsed: lastPassed === null ? null : Math.max(0, at - lastPassed),
        /** Classic: how long repeats are still held back (the entry's expiry); otherwise when the gate's record ends. */
        remaining: base.remaining,
        length: classic && entry.expiresAt !== null ? entry.expiresAt - entry.storedAt : null,
        passes: passes.length > 0 ? passes.length : null,
        count: typeof state.count === 'number' ? state.count : null,
        held: held && typeof held.count === 'number' ? held.count : null,
      },
      preview: previewOf(value),
    };
  }
  if (kind === 'counter') {
    const record = (typeof value === 'number' ? { count: value, periodStart: null } : value) as { count?: unknown; periodStart?: unknown } | null;
    const count = typeof record?.count === 'number' ? record.count : null;
    const periodStart = typeof record?.periodStart === 'number' ? record.periodStart : null;
    return {
      ...base,
      counter: { key: key.slice(COUNTER_PREFIX.length), count, periodStart, periodStartText: isoInZone(periodStart, zone) },
      preview: previewOf(value),
    };
  }
  if (kind === 'fetch' && isStoredResponse(value)) {
    const fetchedAt = typeof value.fetchedAt === 'number' && Number.isFinite(value.fetchedAt) ? value.fetchedAt : entry.storedAt;
    return {
      ...base,
      fetch: {
        statusCode: value.statusCode,
        contentType: value.contentType,
        returnType: value.kind,
        // the URL written with the answer (already clean, whether or not its node still exists); older answers: from a node's configuration
        url: typeof value.url === 'string' ? value.url : (url ?? null),
        fetchedAt,
        fetchedAtText: isoInZone(fetchedAt, zone),
        age: Math.max(0, at - fetchedAt),
        withCredential: typeof value.credential === 'string' && value.credential !== '',
      },
      // the body only: the rest is above, and the credential's digest is nobody's business
      preview: previewOf(value.body),
    };
  }
  return { ...base, preview: previewOf(value) };
}
