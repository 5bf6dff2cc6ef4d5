// What ttl-fetch decides, apart from Node-RED: its settings from the dialog, when a cached answer is
// fresh, when a stale one is served instead of an error, how long an answer is kept, which method a
// redirect is followed with, and the form an answer is stored and handed out in. No I/O here.
import { CacheError, type ErrorCode, formatBytes, InputError, messageOf } from '../lib/errors';
import type { Entry } from '../lib/store';
import type { BaseNodeConfig } from './api';
import { credentialDigest } from './fetch-url';
import { type Substitutions, shared, text } from './i18n';
import { checkKeyConfig, describe, KEY_TYPES } from './input';
import { configNumber } from './settings';

/** A text of ttl-fetch's catalogue. */
export function tf(key: string, substitutions?: Substitutions): string {
  return text(undefined, 'ttl-fetch', key, substitutions);
}

interface HeaderConfig {
  name?: string;
  value?: string;
}

export interface TtlFetchConfig extends BaseNodeConfig {
  url?: string;
  method?: string;
  headers?: HeaderConfig[];
  secretHeader?: string;
  ttl?: number | string;
  ttlUnits?: string;
  returnType?: string;
  staleIfError?: boolean | string;
  timeout?: number | string;
  maxResponseMb?: number | string;
}

export type BodyKind = 'json' | 'text' | 'buffer';

/**
 * What one cached response holds in the store (never the URL or a header: they may carry secrets).
 * `credential` is a one-way digest of the credential the request was made with (absent: none), so
 * an answer fetched with one secret is never given to a request made with another or with none.
 */
export interface StoredResponse {
  kind: BodyKind;
  body: unknown;
  statusCode: number;
  contentType: string | null;
  credential?: string;
  /** The URL asked for, as it may be shown (origin and plain path segments: no query, no secret), written with the answer. */
  url?: string;
  /** When the response was fetched (ms): freshness is measured from it, as the store may restamp an entry it finds stamped in the future. */
  fetchedAt?: number;
}

/** One resolved request: what is fetched and under which key it is cached. */
export interface FetchRequest {
  url: URL;
  /** The URL as errors, warnings and statuses show it: origin and path, secret-looking parts replaced (see shownUrl). */
  shown: string;
  key: string;
  /** Digest of the credential this request carries ('' for none): part of a derived key, checked against a stored answer. */
  credential: string;
  /** Whether the first request goes with the secret header. */
  sendSecret: boolean;
  body: string | Buffer | undefined;
  contentType: string | undefined;
}

export const METHODS = ['GET', 'HEAD', 'POST'];
export const RETURN_TYPES: readonly BodyKind[] = ['json', 'text', 'buffer'];
export const TTL_UNITS: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };
export const DEFAULT_TTL = 5;
export const DEFAULT_TIMEOUT_S = 30;
export const MAX_TIMEOUT_S = 3600;
export const DEFAULT_MAX_RESPONSE_MB = 5;
export const MAX_MAX_RESPONSE_MB = 1024;
export const MAX_REDIRECTS = 10;
/** How much longer than the request's timeout a cross-process flight keeps its lock (a holder that died lets go then). */
export const FLIGHT_HOLD_MARGIN_MS = 5_000;
export const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Headers that never follow a redirect to another origin, even when listed as not secret (as browsers drop Authorization).
export const ORIGIN_BOUND_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
// A stale copy is kept this long beyond its TTL (at least a day, at least 9 TTLs), for staleIfError.
const MIN_STALE_KEEP_S = 86400;
const STALE_KEEP_FACTOR = 9;
export const SECRET_PLACEHOLDER = /\{\{\s*secret\s*\}\}/g;
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
export const BAD_HEADER_VALUE = /[\r\n\0]/;

/** A failed upstream request; `retryable` failures (network, timeout, 5xx, 408, 429, unreadable or too large body) may be answered from a stale copy. */
export class UpstreamError extends CacheError {
  readonly statusCode: number | undefined;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, retryable: boolean, statusCode?: number) {
    super(code, message);
    this.name = 'UpstreamError';
    this.retryable = retryable;
    this.statusCode = statusCode;
  }
}

/** An upstream failure as JSON, for a ttl-fetch in another process that waited for the same request. */
export function encodeUpstreamError(error: unknown): unknown {
  if (!(error instanceof UpstreamError)) return undefined;
  return { code: error.code, message: error.message, retryable: error.retryable, statusCode: error.statusCode };
}

/** The failure another process's flight ended with, as this process's own UpstreamError. */
export function decodeUpstreamError(data: unknown): Error {
  const failure = (data ?? {}) as { code?: ErrorCode; message?: string; retryable?: boolean; statusCode?: number };
  const statusCode = typeof failure.statusCode === 'number' ? failure.statusCode : undefined;
  return new UpstreamError(failure.code ?? 'UPSTREAM_UNREACHABLE', String(failure.message ?? ''), failure.retryable !== false, statusCode);
}

/** When a stored response was fetched: its own stamp (entries stored before it was kept: the store's). */
export function fetchedAtOf(entry: Entry): number {
  const { fetchedAt } = entry.value as StoredResponse;
  return typeof fetchedAt === 'number' && Number.isFinite(fetchedAt) ? fetchedAt : entry.storedAt;
}

export function isStoredResponse(value: unknown): value is StoredResponse {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Partial<StoredResponse>;
  return RETURN_TYPES.includes(v.kind as BodyKind) && typeof v.statusCode === 'number' && 'body' in v;
}

/** The response body in the form it is stored for a return type (json: parsed; text: string; buffer: Buffer). */
export function storedBody(raw: Buffer, kind: BodyKind, shown: string): unknown {
  if (kind === 'buffer') return raw;
  const text = raw.toString('utf8');
  if (kind === 'text') return text;
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new UpstreamError('UPSTREAM_NOT_JSON', tf('errors.notJson', { url: shown }), true);
  }
}

/**
 * The stored body in the wanted form (a cached entry may have been stored for another return type): a
 * private copy, or with `copy` false the body itself where the entry is already the caller's own copy.
 */
export function bodyAs(stored: StoredResponse, wanted: BodyKind, copy = true): unknown {
  const { kind, body } = stored;
  if (kind === wanted) {
    if (!copy) return body;
    if (Buffer.isBuffer(body)) return Buffer.from(body);
    return typeof body === 'object' && body !== null ? structuredClone(body) : body;
  }
  const text = kind === 'buffer' ? (body as Buffer).toString('utf8') : kind === 'json' ? JSON.stringify(body) : String(body);
  if (wanted === 'text') return text;
  if (wanted === 'buffer') return Buffer.from(text, 'utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError(tf('errors.cachedNotJson'));
  }
}

export function timeoutError(shown: string, timeoutS: number): UpstreamError {
  return new UpstreamError('UPSTREAM_TIMEOUT', tf('errors.timedOut', { url: shown, seconds: timeoutS }), true);
}

export function closingError(shown: string): UpstreamError {
  return new UpstreamError('UPSTREAM_ABORTED', tf('errors.cancelled', { url: shown }), false);
}

export function tooLargeError(shown: string, limitBytes: number, declared?: number): UpstreamError {
  const size = declared === undefined ? tf('errors.moreThan', { size: formatBytes(limitBytes) }) : formatBytes(declared);
  return new UpstreamError('UPSTREAM_TOO_LARGE', tf('errors.tooLarge', { url: shown, size, limit: formatBytes(limitBytes) }), true);
}

export function requestBody(payload: unknown): { body: string | Buffer | undefined; contentType: string | undefined } {
  if (payload === undefined || payload === null) return { body: undefined, contentType: undefined };
  if (typeof payload === 'string') return { body: payload, contentType: 'text/plain; charset=utf-8' };
  if (Buffer.isBuffer(payload)) return { body: payload, contentType: 'application/octet-stream' };
  let text: string;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    throw new InputError(tf('errors.payloadNotJson', { cause: messageOf(error) }));
  }
  return { body: text, contentType: 'application/json' };
}

/** The origin of a configured URL when it is fixed (no placeholder before the path), else undefined. */
export function fixedOrigin(configUrl: string): string | undefined {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(configUrl)?.[0];
  if (!authority || authority.includes('{{')) return undefined;
  try {
    const url = new URL(authority);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/** What a ttl-fetch node settles from its dialog and its credential. */
export interface FetchSettings {
  configUrl: string;
  method: string;
  returnType: BodyKind;
  staleIfError: boolean;
  /** The key is derived from method and URL (the dialog's key is empty). */
  derived: boolean;
  /** How long an answer is fresh (ms). */
  ttlMs: number;
  /** How long an answer is kept in the store (s): longer than its TTL when a stale copy may be served. */
  keepSeconds: number;
  timeoutS: number;
  timeoutMs: number;
  maxResponseBytes: number;
  /** The headers listed in the dialog (not secret). */
  headers: Record<string, string>;
  secret: string | undefined;
  /** {{secret}} in the URL puts the credential there instead of in a header. */
  secretInUrl: boolean;
  secretHeaderName: string;
  /** The origin the secret may go to (the configured URL's, when fixed). */
  secretOrigin: string | undefined;
  /** Digest of the secret as a header ('' without one), and as part of the URL. */
  headerCredential: string;
  urlCredential: string;
}

/** How long an answer is kept: its TTL, and with stale-if-error at least a day and at least 9 TTLs beyond it. */
export function keepSecondsFor(ttlSeconds: number, staleIfError: boolean): number {
  return staleIfError ? ttlSeconds + Math.max(MIN_STALE_KEEP_S, STALE_KEEP_FACTOR * ttlSeconds) : ttlSeconds;
}

/** Checks every field of the dialog; throws an InputError naming the first bad one. */
export function fetchSettings(config: TtlFetchConfig, secret: string | undefined): FetchSettings {
  const configUrl = (config.url ?? '').trim();
  const method = (config.method || 'GET').toUpperCase();
  const returnType = (config.returnType || 'json') as BodyKind;
  const ttlUnits = config.ttlUnits || 'minutes';
  const staleIfError = config.staleIfError !== false && config.staleIfError !== 'false';
  const derived = (config.key ?? '').trim() === '';
  const secretInUrl = new RegExp(SECRET_PLACEHOLDER.source).test(configUrl);
  const secretHeaderName = (config.secretHeader || 'Authorization').trim();
  // the secret goes only to the origin of the configured URL: never to a msg.url elsewhere, never after a redirect elsewhere
  const secretOrigin = fixedOrigin(configUrl);
  if (!METHODS.includes(method)) throw new InputError(tf('errors.method', { choices: METHODS.join(', '), value: describe(config.method) }));
  if (!RETURN_TYPES.includes(returnType))
    throw new InputError(tf('errors.returnType', { choices: RETURN_TYPES.join(', '), value: describe(config.returnType) }));
  if (!(ttlUnits in TTL_UNITS)) throw new InputError(tf('errors.ttlUnits', { choices: Object.keys(TTL_UNITS).join(', '), value: describe(config.ttlUnits) }));
  const ttl = configNumber(config.ttl, DEFAULT_TTL);
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new InputError(tf('errors.ttl', { value: describe(config.ttl) }));
  const ttlSeconds = ttl * TTL_UNITS[ttlUnits];
  const timeoutS = configNumber(config.timeout, DEFAULT_TIMEOUT_S);
  if (typeof timeoutS !== 'number' || !Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > MAX_TIMEOUT_S) {
    throw new InputError(tf('errors.timeout', { max: MAX_TIMEOUT_S, value: describe(config.timeout) }));
  }
  const maxResponseMb = configNumber(config.maxResponseMb, DEFAULT_MAX_RESPONSE_MB);
  if (!Number.isFinite(maxResponseMb) || maxResponseMb <= 0 || maxResponseMb > MAX_MAX_RESPONSE_MB) {
    throw new InputError(tf('errors.sizeLimit', { max: MAX_MAX_RESPONSE_MB, value: describe(config.maxResponseMb) }));
  }
  if (derived) {
    if (!(KEY_TYPES as readonly string[]).includes(config.keyType || 'msg')) throw new InputError(shared('keyTypeUnknown', { type: String(config.keyType) }));
  } else {
    checkKeyConfig(config);
  }
  if (secretInUrl && !secret) throw new InputError(tf('errors.secretMissing'));
  if (secret && !secretInUrl && !secretOrigin) throw new InputError(tf(configUrl === '' ? 'errors.secretNoUrl' : 'errors.secretNoOrigin'));
  const headers = headerSet(config);
  let headerCredential = '';
  if (secret && !secretInUrl) {
    if (!HEADER_NAME.test(secretHeaderName)) throw new InputError(tf('errors.secretHeaderName', { name: describe(secretHeaderName) }));
    if (BAD_HEADER_VALUE.test(secret)) throw new InputError(tf('errors.secretHeaderValue', { name: secretHeaderName }));
    for (const name of Object.keys(headers)) if (name.toLowerCase() === secretHeaderName.toLowerCase()) delete headers[name];
    headerCredential = credentialDigest(secretHeaderName, secret);
  }
  return {
    configUrl,
    method,
    returnType,
    staleIfError,
    derived,
    ttlMs: Math.round(ttlSeconds * 1000),
    keepSeconds: keepSecondsFor(ttlSeconds, staleIfError),
    timeoutS,
    timeoutMs: Math.round(timeoutS * 1000),
    maxResponseBytes: Math.max(1, Math.floor(maxResponseMb * 1024 * 1024)),
    headers,
    secret,
    secretInUrl,
    secretHeaderName,
    secretOrigin,
    headerCredential,
    urlCredential: secret && secretInUrl ? credentialDigest('{{secret}}', secret) : '',
  };
}

/** The request headers listed in the configuration (not secret). */
function headerSet(config: TtlFetchConfig): Record<string, string> {
  const result: Record<string, string> = {};
  const list = config.headers ?? [];
  if (!Array.isArray(list)) throw new InputError(tf('errors.headersList'));
  for (const header of list) {
    const name = String(header?.name ?? '').trim();
    const value = String(header?.value ?? '');
    if (name === '' && value === '') continue;
    if (!HEADER_NAME.test(name)) throw new InputError(tf('errors.headerName', { name: describe(name) }));
    if (BAD_HEADER_VALUE.test(value)) throw new InputError(tf('errors.headerValue', { name }));
    result[name] = value;
  }
  return result;
}

/** A cached answer as a request finds it: usable (the request's own credential), and fresh or not. */
export interface CachedAnswer {
  /** The stored answer, when it answers this request (fetched with the same credential, or both without). */
  entry: Entry | undefined;
  /** Whether it may be given without asking upstream. */
  fresh: boolean;
}

/**
 * Judges a stored answer for a request made with `credential` at `at`: an answer fetched with
 * another credential (or none) is not this request's answer, not even as a stale copy; it is fresh
 * only while its age is in [0, TTL), so an answer stamped in the future (the clock went back) is stale.
 */
export function judgeCached(found: Entry | undefined, credential: string, at: number, ttlMs: number): CachedAnswer {
  const entry = found && isStoredResponse(found.value) && (found.value.credential ?? '') === credential ? found : undefined;
  if (!entry) return { entry: undefined, fresh: false };
  const age = at - fetchedAtOf(entry);
  return { entry, fresh: age >= 0 && age < ttlMs };
}

/** Whether a failed request is answered from the cached copy instead: stale-if-error on, a copy kept, and a failure worth retrying. */
export function servesStale(error: unknown, cached: CachedAnswer, staleIfError: boolean): cached is { entry: Entry; fresh: boolean } {
  return staleIfError && cached.entry !== undefined && error instanceof UpstreamError && error.retryable;
}

/**
 * The method and whether the body goes along after a redirect, as browsers do: 303 turns every method
 * but HEAD into GET, 301 and 302 turn a POST into GET; 307 and 308 keep both.
 */
export function afterRedirect(status: number, method: string): { method: string; keepBody: boolean } {
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) return { method: 'GET', keepBody: false };
  return { method, keepBody: true };
}

/** Failures worth answering from a stale copy: the server's own trouble (5xx), a timeout (408) or a rate limit (429). */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
