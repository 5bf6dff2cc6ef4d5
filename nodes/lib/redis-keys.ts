// What a key of a Redis namespace is called and what it holds.
//
// Keys: `<prefix><namespace as UTF-8 hex>:<key>`, so two namespaces never mix and one namespace is
// exactly what `SCAN MATCH <prefix><hex>:*` finds. Values: the SQLite store's row text
// ({"s": storedAt, "e": expiresAt, "v": value through the shared serializer}, store-rows.ts), so
// values keep their types; expiry is Redis's own (PX). A single flight's lock and outcome live beside
// the namespace under `<prefix><hex>#flight:...`, which neither `keys` nor `clear` see.
import { createHash } from 'node:crypto';
import { CacheError } from './errors';
import { decodeJson, encodeValue, type Json } from './serialize';
import { checkKey, type Entry, encodeNamespace, rowText, stampsOf } from './store-rows';

/** `<prefix><namespace hex>`: every key of the namespace starts with it and a ':'. */
export function namespaceBase(prefix: string, namespace: string): string {
  return `${prefix}${encodeNamespace(namespace)}`;
}

/** The Redis key of a key of the namespace at `base`. */
export function redisKeyOf(base: string, key: string): string {
  checkKey(key);
  return `${base}:${key}`;
}

/** The SCAN MATCH pattern of exactly the namespace's keys. */
export function namespacePattern(base: string): string {
  return `${globLiteral(base)}:*`;
}

/** The lock of a single flight of the namespace. */
export function flightLock(base: string, flightKey: string): string {
  return `${base}#flight:${createHash('sha256').update(flightKey).digest('hex')}`;
}

/** A text's SHA-1 in hex, as redis.sha1hex gives it and EVALSHA names a script. */
export function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

/** The entry a key holds; a value that is not one of ours is STORE_IO (redisForeign). */
export function parseEntry(text: string, where: string): Entry {
  let parsed: { s?: unknown; e?: unknown; v?: Json };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new CacheError('STORE_IO', `Redis key ${where} does not hold a flow-cache entry`, { text: 'redisForeign', values: { key: where } });
  }
  if (!parsed || typeof parsed !== 'object' || typeof parsed.s !== 'number' || !('v' in parsed)) {
    throw new CacheError('STORE_IO', `Redis key ${where} does not hold a flow-cache entry`, { text: 'redisForeign', values: { key: where } });
  }
  return { value: decodeJson(parsed.v as Json), storedAt: parsed.s, expiresAt: typeof parsed.e === 'number' ? parsed.e : null };
}

/** The text, stamps and PX of a value to write; a bad TTL is INVALID_TTL and nothing is written. */
export function makeRecord(value: unknown, ttlSeconds: number | undefined): { text: string; storedAt: number; expiresAt: number | null; px: number } {
  const { storedAt, expiresAt, ttlMs } = stampsOf(ttlSeconds, 1);
  return { text: rowText(encodeValue(value), storedAt, expiresAt), storedAt, expiresAt, px: ttlMs };
}

/** A glob pattern (SCAN MATCH) that matches `text` literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
