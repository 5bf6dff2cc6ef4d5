// Time zones and the dates nodes put on messages.
import { DateTime, IANAZone } from 'luxon';
import { now } from '../lib/clock';
import type { Entry } from '../lib/store';

let hostZoneName: string | undefined;

/** The host's IANA zone name (what an empty `timezone` means); looked up once: an Intl.DateTimeFormat costs more than a whole message. */
export function hostZone(): string {
  hostZoneName ??= Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  return hostZoneName;
}

export function isValidZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

const isoMemo = new Map<string, string | null>();

/** An instant in ms as an ISO string in a zone (null stays null); repeated instants (hits on one entry) come from a small memo. */
export function isoInZone(ms: number | null | undefined, zone: string): string | null {
  if (ms === null || ms === undefined) return null;
  const memoKey = `${zone}|${ms}`;
  let iso = isoMemo.get(memoKey);
  if (iso === undefined) {
    iso = DateTime.fromMillis(ms, { zone }).toISO();
    if (isoMemo.size >= 1_000) isoMemo.clear();
    isoMemo.set(memoKey, iso);
  }
  return iso;
}

/** The `msg.cache` object of cache-get / cache-set. */
export function cacheInfo(key: string, hit: boolean, entry: Entry | undefined, zone: string) {
  return {
    key,
    hit,
    storedAt: isoInZone(entry?.storedAt, zone),
    expiresAt: isoInZone(entry?.expiresAt, zone),
    age: entry ? Math.max(0, now() - entry.storedAt) : null,
  };
}
