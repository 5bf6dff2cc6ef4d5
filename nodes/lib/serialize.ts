import { types } from 'node:util';
import { DateTime } from 'luxon';
import { UnstorableValueError } from './errors';

// Tagged JSON: values JSON cannot hold become {"$t": tag, "v": payload}; a plain object that
// itself has a "$t" key is wrapped as {"$t": "O", "v": {...}} so decoding is never ambiguous.
const TAG = '$t';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Encodes a value to text, preserving Date, luxon DateTime, Buffer, Map, Set, BigInt and non-finite numbers. */
export function encodeValue(value: unknown): string {
  if (value === undefined) throw new UnstorableValueError('value', 'undefined (there is nothing to store)');
  return JSON.stringify(isPlainJson(value, 0) ? value : toJson(value, ROOT, new Set()));
}

const MAX_PLAIN_DEPTH = 64;

/**
 * True when JSON.stringify alone encodes the value exactly: only plain objects and arrays of
 * strings, booleans, null and finite numbers, no "$t" or "__proto__" key. Anything else (and any
 * cycle, found by the depth limit) takes the tagging encoder, which also names what it rejects.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false; // an inherited enumerable key: let the full encoder decide
    if (key === TAG || key === '__proto__') return false;
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || !isPlainJson(v, depth + 1)) return false;
  }
  return true;
}

/** Decodes text made by encodeValue into a fresh copy of the value. */
export function decodeValue(text: string): unknown {
  return fromJson(JSON.parse(text) as Json);
}

/** Decodes an already parsed encoding (as found inside a stored row). */
export function decodeJson(json: Json): unknown {
  return fromJson(json);
}

// Where in the value the encoder is: a linked list turned into text ("value.a[2]") only for an error.
// A step is an array index (number), a property name (string) or a Map/Set position (label).
interface Path {
  parent: Path | undefined;
  step: string | number;
  label?: boolean;
}
const ROOT: Path = { parent: undefined, step: 'value', label: true };

function at(parent: Path, step: string | number, label = false): Path {
  return { parent, step, label };
}

function pathText(path: Path): string {
  let text = '';
  for (let p: Path | undefined = path; p; p = p.parent) {
    text = (p.label ? String(p.step) : typeof p.step === 'number' ? `[${p.step}]` : `.${p.step}`) + text;
  }
  return text;
}

function unstorable(path: Path, what: string): UnstorableValueError {
  return new UnstorableValueError(pathText(path), what);
}

function tagged(tag: string, v: Json): Json {
  return { [TAG]: tag, v };
}

function toJson(value: unknown, path: Path, seen: Set<object>): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value)) return Object.is(value, -0) ? tagged('N', '-0') : value;
      return tagged('N', String(value));
    case 'bigint':
      return tagged('I', value.toString());
    case 'undefined':
      throw unstorable(path, 'undefined');
    case 'function':
      throw unstorable(path, 'a function');
    case 'symbol':
      throw unstorable(path, 'a symbol');
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) throw unstorable(path, 'a circular reference');
  seen.add(obj);
  try {
    return objectToJson(obj, path, seen);
  } finally {
    seen.delete(obj);
  }
}

/** Encodes a member; plain strings, booleans and finite numbers skip building a path. */
function child(value: unknown, parent: Path, step: string | number, seen: Set<object>): Json {
  const type = typeof value;
  if (type === 'string' || type === 'boolean' || (type === 'number' && Number.isFinite(value) && !Object.is(value, -0))) return value as Json;
  return toJson(value, at(parent, step), seen);
}

function objectToJson(obj: object, path: Path, seen: Set<object>): Json {
  if (Array.isArray(obj)) {
    const out: Json[] = new Array(obj.length);
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) throw unstorable(at(path, i), 'an empty array slot');
      out[i] = child(obj[i], path, i, seen);
    }
    return out;
  }
  if (types.isDate(obj)) {
    const t = obj.getTime();
    if (Number.isNaN(t)) throw unstorable(path, 'an invalid Date');
    return tagged('D', obj.toISOString());
  }
  if (DateTime.isDateTime(obj)) {
    if (!obj.isValid) throw unstorable(path, `an invalid luxon DateTime (${obj.invalidReason})`);
    return tagged('L', [obj.toISO({ includeOffset: true }) as string, obj.zoneName ?? 'UTC']);
  }
  if (Buffer.isBuffer(obj)) return tagged('B', obj.toString('base64'));
  if (types.isMap(obj)) {
    const entries: Json[] = [];
    let i = 0;
    for (const [k, v] of obj) {
      entries.push([toJson(k, at(path, `<key ${i}>`, true), seen), toJson(v, at(path, `<value ${i}>`, true), seen)]);
      i++;
    }
    return tagged('M', entries);
  }
  if (types.isSet(obj)) {
    const items: Json[] = [];
    let i = 0;
    for (const v of obj) items.push(toJson(v, at(path, `<item ${i++}>`, true), seen));
    return tagged('S', items);
  }
  // Objects made in a Function node's sandbox have that realm's Object.prototype: plain all the same.
  const proto = Object.getPrototypeOf(obj);
  if (proto !== null && Object.getPrototypeOf(proto) !== null) {
    const name = (obj as { constructor?: { name?: string } }).constructor?.name || 'unknown';
    throw unstorable(path, `an instance of class ${name}`);
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) throw unstorable(path, 'a symbol-keyed property');
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(obj)) {
    const v = (obj as Record<string, unknown>)[key];
    if (v === undefined) continue; // as JSON does: an absent property
    setOwn(out, key, child(v, path, key, seen));
  }
  return TAG in out ? tagged('O', out) : out;
}

/** Sets a data property; "__proto__" needs defineProperty, or it would set the prototype instead. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function fromJson(json: Json): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(fromJson);
  if (Object.hasOwn(json, TAG)) return fromTagged(json[TAG] as string, json.v as Json);
  return plainObject(json);
}

function plainObject(json: { [key: string]: Json }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(json)) {
    setOwn(out, key, fromJson(json[key]));
  }
  return out;
}

function fromTagged(tag: string, v: Json): unknown {
  switch (tag) {
    case 'N':
      return v === '-0' ? -0 : Number(v);
    case 'I':
      return BigInt(v as string);
    case 'D':
      return new Date(v as string);
    case 'L': {
      const [iso, zone] = v as [string, string];
      return DateTime.fromISO(iso, { setZone: true }).setZone(zone);
    }
    case 'B':
      return Buffer.from(v as string, 'base64');
    case 'M':
      return new Map((v as [Json, Json][]).map(([k, val]) => [fromJson(k), fromJson(val)]));
    case 'S':
      return new Set((v as Json[]).map(fromJson));
    case 'O':
      return plainObject(v as { [key: string]: Json });
    default:
      throw new Error(`unknown value tag "${tag}" in stored entry`);
  }
}
