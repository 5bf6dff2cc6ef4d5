import { createHash } from 'node:crypto';
import { now } from './lib/clock';
import { CacheError, InputError } from './lib/errors';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage, SendFunction } from './lib/node-red';
import {
  checkKeyConfig,
  configNumber,
  describe,
  fillPlaceholders,
  isoInZone,
  KEY_TYPES,
  onInput,
  rejectAll,
  releaseOnClose,
  resolveKey,
  StatusReporter,
  StoreBinding,
} from './lib/node-support';
import type { CacheNamespace } from './lib/registry';
import type { Entry } from './lib/store';

interface HeaderConfig {
  name?: string;
  value?: string;
}

interface TtlFetchConfig extends BaseNodeConfig {
  url?: string;
  method?: string;
  headers?: HeaderConfig[];
  secretHeader?: string;
  ttl?: number | string;
  ttlUnits?: string;
  returnType?: string;
  staleIfError?: boolean | string;
  timeout?: number | string;
}

type ReturnType = 'json' | 'text' | 'buffer';

/** What one cached response holds in the store (never the URL or a header: they may carry secrets). */
interface StoredResponse {
  kind: ReturnType;
  body: unknown;
  statusCode: number;
  contentType: string | null;
}

/** One resolved request: what is fetched and under which key it is cached. */
interface FetchRequest {
  url: string;
  /** The URL without user info and query, safe for status texts, warnings and errors. */
  shown: string;
  key: string;
  body: string | Buffer | undefined;
  contentType: string | undefined;
}

const METHODS = ['GET', 'HEAD', 'POST'];
const RETURN_TYPES: readonly ReturnType[] = ['json', 'text', 'buffer'];
const TTL_UNITS: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };
const DEFAULT_TTL = 5;
const DEFAULT_TIMEOUT_S = 30;
const MAX_TIMEOUT_S = 3600;
// A stale copy is kept this long beyond its TTL (at least a day, at least 9 TTLs), for staleIfError.
const MIN_STALE_KEEP_S = 86400;
const STALE_KEEP_FACTOR = 9;
const SECRET_PLACEHOLDER = /\{\{\s*secret\s*\}\}/g;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_HEADER_VALUE = /[\r\n\0]/;

/** A failed upstream request; `retryable` failures (network, timeout, 5xx, 408, 429, unreadable body) may be answered from a stale copy. */
class UpstreamError extends CacheError {
  readonly statusCode: number | undefined;
  readonly retryable: boolean;
  constructor(code: string, message: string, retryable: boolean, statusCode?: number) {
    super(code, message);
    this.name = 'UpstreamError';
    this.retryable = retryable;
    this.statusCode = statusCode;
  }
}

/** The cache key of a request: a sha256 of method and URL (and a POST body), so no secret in the URL is stored in clear. */
function derivedKey(method: string, url: string, body?: string | Buffer): string {
  const hash = createHash('sha256').update(`${method} ${url}`);
  if (body !== undefined) hash.update('\n').update(createHash('sha256').update(body).digest('hex'));
  return `fetch:${hash.digest('hex')}`;
}

function isStoredResponse(value: unknown): value is StoredResponse {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<StoredResponse>;
  return RETURN_TYPES.includes(v.kind as ReturnType) && typeof v.statusCode === 'number' && 'body' in v;
}

/** The response body in the form it is stored for a return type (json: parsed; text: string; buffer: Buffer). */
function storedBody(raw: Buffer, kind: ReturnType, shown: string): unknown {
  if (kind === 'buffer') return raw;
  const text = raw.toString('utf8');
  if (kind === 'text') return text;
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new UpstreamError('UPSTREAM_NOT_JSON', `the response of ${shown} is not JSON (set "Return" to text or buffer to take it as it is)`, true);
  }
}

/** A private copy of a stored body in the wanted form (a cached entry may have been stored for another return type). */
function bodyAs(stored: StoredResponse, wanted: ReturnType): unknown {
  const { kind, body } = stored;
  if (kind === wanted) {
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
    throw new InputError('the cached response is not JSON (it was stored for another return type); send msg.refresh = true to fetch it again');
  }
}

/** Turns what fetch threw into an UpstreamError that says what happened, without the query string. */
function requestFailure(error: unknown, shown: string, timeoutS: number): UpstreamError {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return new UpstreamError('UPSTREAM_TIMEOUT', `request to ${shown} timed out after ${timeoutS} s`, true);
  if (err?.name === 'AbortError') return new UpstreamError('UPSTREAM_ABORTED', `request to ${shown} was cancelled: the node is closing`, false);
  const reason = err?.cause?.message || err?.cause?.code || err?.message || String(error);
  return new UpstreamError('UPSTREAM_UNREACHABLE', `request to ${shown} failed: ${reason}`, true);
}

function requestBody(payload: unknown): { body: string | Buffer | undefined; contentType: string | undefined } {
  if (payload === undefined || payload === null) return { body: undefined, contentType: undefined };
  if (typeof payload === 'string') return { body: payload, contentType: 'text/plain; charset=utf-8' };
  if (Buffer.isBuffer(payload)) return { body: payload, contentType: 'application/octet-stream' };
  let text: string;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    throw new InputError(`msg.payload cannot be sent as JSON: ${(error as Error).message}`);
  }
  return { body: text, contentType: 'application/json' };
}

export = (RED: NodeAPI) => {
  function TtlFetch(this: Node, config: TtlFetchConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new StatusReporter(node);
    const configUrl = (config.url ?? '').trim();
    const method = (config.method || 'GET').toUpperCase();
    const returnType = (config.returnType || 'json') as ReturnType;
    const ttlUnits = config.ttlUnits || 'minutes';
    const staleIfError = config.staleIfError !== false && config.staleIfError !== 'false';
    const derived = (config.key ?? '').trim() === '';
    const secret = node.credentials?.secret || undefined;
    // {{secret}} in the URL puts the credential there (an API key in the query) instead of in a header
    const secretInUrl = new RegExp(SECRET_PLACEHOLDER.source).test(configUrl);
    let ttlMs: number;
    let keepSeconds: number;
    let timeoutS: number;
    let headers: Record<string, string>;
    let binding: StoreBinding;
    try {
      if (!METHODS.includes(method)) throw new Error(`method must be one of ${METHODS.join(', ')}, got ${describe(config.method)}`);
      if (!RETURN_TYPES.includes(returnType)) throw new Error(`return type must be one of ${RETURN_TYPES.join(', ')}, got ${describe(config.returnType)}`);
      if (!(ttlUnits in TTL_UNITS)) throw new Error(`TTL units must be one of ${Object.keys(TTL_UNITS).join(', ')}, got ${describe(config.ttlUnits)}`);
      const ttl = configNumber(config.ttl, DEFAULT_TTL);
      if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new Error(`TTL must be a number > 0, got ${describe(config.ttl)}`);
      const ttlSeconds = ttl * TTL_UNITS[ttlUnits];
      ttlMs = Math.round(ttlSeconds * 1000);
      keepSeconds = staleIfError ? ttlSeconds + Math.max(MIN_STALE_KEEP_S, STALE_KEEP_FACTOR * ttlSeconds) : ttlSeconds;
      timeoutS = configNumber(config.timeout, DEFAULT_TIMEOUT_S);
      if (typeof timeoutS !== 'number' || !Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > MAX_TIMEOUT_S) {
        throw new Error(`timeout must be a number of seconds > 0 and <= ${MAX_TIMEOUT_S}, got ${describe(config.timeout)}`);
      }
      if (derived) {
        if (!(KEY_TYPES as readonly string[]).includes(config.keyType || 'msg')) throw new Error(`unknown key type "${config.keyType}"`);
      } else {
        checkKeyConfig(config);
      }
      if (secretInUrl && !secret) throw new Error('the URL holds {{secret}} but the node has no secret');
      headers = headerSet(config, secretInUrl ? undefined : secret);
      binding = new StoreBinding(RED, node, config.store);
    } catch (error) {
      rejectAll(node, status, (error as Error).message);
      return;
    }

    const flights = new Map<string, Promise<Entry>>();
    const active = new Set<Promise<void>>();
    const closing = new AbortController();
    const warned = new WeakSet<Error>();
    let hits = 0;
    let misses = 0;

    /** The URL, cache key and body for one message; bad input is an InputError and nothing is fetched. */
    async function resolveRequest(msg: NodeMessage): Promise<FetchRequest> {
      let raw: string;
      if (msg.url !== undefined && msg.url !== null && msg.url !== '') {
        if (typeof msg.url !== 'string') throw new InputError(`msg.url must be a string, got ${describe(msg.url)}`);
        raw = msg.url.trim();
      } else {
        if (!configUrl) throw new InputError('no URL: set the URL of the node or send msg.url');
        const template = secretInUrl ? configUrl.replace(SECRET_PLACEHOLDER, encodeURIComponent(secret as string)) : configUrl;
        raw = fillPlaceholders(RED, template, msg, 'URL');
      }
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        throw new InputError(`malformed URL ${describe(raw.split('?')[0])}: give an absolute http:// or https:// URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new InputError(`only http:// and https:// URLs can be fetched, got ${describe(`${parsed.protocol}//`)}`);
      }
      if (parsed.username || parsed.password) {
        throw new InputError('the URL must not hold a user name or password: put an Authorization header in the secret header field');
      }
      parsed.hash = '';
      const shown = `${parsed.origin}${parsed.pathname}`;
      const { body, contentType } = method === 'POST' ? requestBody(msg.payload) : { body: undefined, contentType: undefined };
      const key = derived ? derivedKey(method, parsed.href, body) : await resolveKey(RED, node, config, msg);
      return { url: parsed.href, shown, key, body, contentType };
    }

    /** Fetches a response and stores it (2xx only); throws an UpstreamError for every other outcome. */
    async function fetchAndStore(request: FetchRequest, cache: CacheNamespace): Promise<Entry> {
      const signal = AbortSignal.any([AbortSignal.timeout(Math.round(timeoutS * 1000)), closing.signal]);
      const requestHeaders = { ...headers };
      if (request.contentType && !Object.keys(requestHeaders).some((h) => h.toLowerCase() === 'content-type')) {
        requestHeaders['content-type'] = request.contentType;
      }
      let response: Response;
      let raw: Buffer;
      try {
        response = await fetch(request.url, { method, headers: requestHeaders, body: request.body, signal });
        if (response.status < 200 || response.status > 299) {
          await response.body?.cancel().catch(() => undefined);
          const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
          const reason = response.statusText ? ` ${response.statusText}` : '';
          throw new UpstreamError('UPSTREAM_HTTP', `${request.shown} answered ${response.status}${reason}`, retryable, response.status);
        }
        raw = Buffer.from(await response.arrayBuffer());
      } catch (error) {
        throw error instanceof UpstreamError ? error : requestFailure(error, request.shown, timeoutS);
      }
      const stored: StoredResponse = {
        kind: returnType,
        body: storedBody(raw, returnType, request.shown),
        statusCode: response.status,
        contentType: response.headers.get('content-type'),
      };
      return cache.set(request.key, stored, keepSeconds);
    }

    /** One upstream request per key at a time: concurrent misses wait for the same answer. */
    function fetchOnce(request: FetchRequest, cache: CacheNamespace): Promise<Entry> {
      let flight = flights.get(request.key);
      if (!flight) {
        flight = fetchAndStore(request, cache).finally(() => flights.delete(request.key));
        flights.set(request.key, flight);
      }
      return flight;
    }

    function deliver(msg: NodeMessage, send: SendFunction, key: string, entry: Entry, hit: boolean, stale: boolean): void {
      const stored = entry.value as StoredResponse;
      msg.payload = bodyAs(stored, returnType);
      msg.statusCode = stored.statusCode;
      msg.cache = {
        key,
        hit,
        stale,
        storedAt: isoInZone(entry.storedAt, binding.zone),
        age: Math.max(0, now() - entry.storedAt),
        contentType: stored.contentType,
      };
      send(msg);
    }

    async function handle(msg: NodeMessage, send: SendFunction): Promise<void> {
      const request = await resolveRequest(msg);
      const cache = await binding.namespace();
      const found = await cache.get(request.key);
      const entry = found && isStoredResponse(found.value) ? found : undefined;
      const fresh = entry !== undefined && now() - entry.storedAt < ttlMs;
      if (entry && fresh && msg.refresh !== true) {
        deliver(msg, send, request.key, entry, true, false);
        hits++;
        status.set({ fill: 'green', shape: 'dot', text: `hit (${hits} hit / ${misses} miss)` });
        return;
      }
      let fetched: Entry;
      try {
        fetched = await fetchOnce(request, cache);
      } catch (error) {
        if (error instanceof UpstreamError) {
          // the status of this request, or none: never one left over from an earlier node
          if (error.statusCode !== undefined) msg.statusCode = error.statusCode;
          else delete msg.statusCode;
        }
        if (!(staleIfError && entry && error instanceof UpstreamError && error.retryable)) throw error;
        if (!warned.has(error)) {
          warned.add(error);
          node.warn(`${error.message}; sending the cached response stored ${Math.round((now() - entry.storedAt) / 1000)} s ago`);
        }
        deliver(msg, send, request.key, entry, true, !fresh);
        hits++;
        const reason = error.statusCode ?? error.code.replace('UPSTREAM_', '').toLowerCase();
        status.set({ fill: 'yellow', shape: 'ring', text: `${fresh ? 'cached' : 'stale'}: ${reason} (${hits} hit / ${misses} miss)` });
        return;
      }
      deliver(msg, send, request.key, fetched, false, false);
      misses++;
      status.set({ fill: 'blue', shape: 'dot', text: `fetched ${(fetched.value as StoredResponse).statusCode} (${hits} hit / ${misses} miss)` });
    }

    onInput(node, status, (msg, send) => {
      const work = handle(msg, send);
      const tracked = work.catch(() => undefined);
      active.add(tracked);
      tracked.then(() => active.delete(tracked));
      return work;
    });

    releaseOnClose(node, status, binding, () => {
      closing.abort();
      return Promise.allSettled([...active]);
    });
  }

  /** The request headers from the configuration: the listed ones, then the secret one from the credentials. */
  function headerSet(config: TtlFetchConfig, secret: string | undefined): Record<string, string> {
    const result: Record<string, string> = {};
    const list = config.headers ?? [];
    if (!Array.isArray(list)) throw new Error('headers must be a list of name/value pairs');
    for (const header of list) {
      const name = String(header?.name ?? '').trim();
      const value = String(header?.value ?? '');
      if (name === '' && value === '') continue;
      if (!HEADER_NAME.test(name)) throw new Error(`header name ${describe(name)} is not valid`);
      if (BAD_HEADER_VALUE.test(value)) throw new Error(`header ${name} has a line break in its value`);
      result[name] = value;
    }
    if (secret) {
      const name = (config.secretHeader || 'Authorization').trim();
      if (!HEADER_NAME.test(name)) throw new Error(`secret header name ${describe(name)} is not valid`);
      if (BAD_HEADER_VALUE.test(secret)) throw new Error(`the secret header ${name} has a line break in its value`);
      for (const existing of Object.keys(result)) if (existing.toLowerCase() === name.toLowerCase()) delete result[existing];
      result[name] = secret;
    }
    return result;
  }

  RED.nodes.registerType('ttl-fetch', TtlFetch, { credentials: { secret: { type: 'password' } } });
};
