import { createHash, pbkdf2Sync } from 'node:crypto';
import { now } from './lib/clock';
import { CacheError, type ErrorCode, formatBytes, InputError, messageOf } from './lib/errors';
import type { CacheSpace } from './lib/space';
import type { Entry } from './lib/store';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage, SendFunction } from './red/api';
import { StoreBinding } from './red/binding';
import { scrubText, scrubValue, secretForms as secretFormsOf, urlSecretsOf } from './red/fetch-url';
import { bindRuntime, type Substitutions, shared, text } from './red/i18n';
import { checkKeyConfig, describe, fillPlaceholders, KEY_TYPES, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { configNumber } from './red/settings';
import { StatusReporter } from './red/status';
import { isoInZone } from './red/time';

/** A text of ttl-fetch's catalogue. */
function tf(key: string, substitutions?: Substitutions): string {
  return text(undefined, 'ttl-fetch', key, substitutions);
}

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
  maxResponseMb?: number | string;
}

type BodyKind = 'json' | 'text' | 'buffer';

/**
 * What one cached response holds in the store (never the URL or a header: they may carry secrets).
 * `credential` is a one-way digest of the credential the request was made with (absent: none), so
 * an answer fetched with one secret is never given to a request made with another or with none.
 */
interface StoredResponse {
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
interface FetchRequest {
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

const METHODS = ['GET', 'HEAD', 'POST'];
const RETURN_TYPES: readonly BodyKind[] = ['json', 'text', 'buffer'];
const TTL_UNITS: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };
const DEFAULT_TTL = 5;
const DEFAULT_TIMEOUT_S = 30;
const MAX_TIMEOUT_S = 3600;
const DEFAULT_MAX_RESPONSE_MB = 5;
const MAX_MAX_RESPONSE_MB = 1024;
const MAX_REDIRECTS = 10;
/** How much longer than the request's timeout a cross-process flight keeps its lock (a holder that died lets go then). */
const FLIGHT_HOLD_MARGIN_MS = 5_000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Headers that never follow a redirect to another origin, even when listed as not secret (as browsers drop Authorization).
const ORIGIN_BOUND_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
// A stale copy is kept this long beyond its TTL (at least a day, at least 9 TTLs), for staleIfError.
const MIN_STALE_KEEP_S = 86400;
const STALE_KEEP_FACTOR = 9;
const SECRET_PLACEHOLDER = /\{\{\s*secret\s*\}\}/g;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_HEADER_VALUE = /[\r\n\0]/;
// The digest of a credential is salted and stretched: a row of the database never lets a short secret be looked up in a table.
const CREDENTIAL_SALT = 'node-red-contrib-flow-cache/ttl-fetch credential';
const CREDENTIAL_ROUNDS = 10_000;

const REDACTED = '…';
const MAX_SHOWN_SEGMENT = 32;
const MAX_SHOWN_DIGITS = 4;
// A path segment shown as it is: at most 32 characters of words (lower case, Capitalized or
// camelCase, that look like words) and at most 4 digits, joined by - _ . , or a version (v1, v2.1).
// Anything else (a token, an id, a hash, a percent-encoded value) is shown as "…".
const PIECE = '(?:[a-z]+(?:[A-Z][a-z]+)*|[A-Z][a-z]+(?:[A-Z][a-z]+)*|\\d{1,4})';
const PLAIN_SEGMENT = new RegExp(`^(?:${PIECE}(?:[-_.]${PIECE})*|v\\d{1,3}(?:\\.\\d{1,3})*)$`);
const HOST_LIKE = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

// Random letters look like this, words seldom do: 21 letters in a row, or 5 consonants in a row.
const NOT_A_WORD = /[A-Za-z]{21}|[b-df-hj-np-tv-xz]{5}/i;

/** Whether a path segment can be shown: short, plain words, few digits. */
function plainSegment(segment: string): boolean {
  if (segment === '') return true;
  if (segment.length > MAX_SHOWN_SEGMENT) return false;
  if ((segment.match(/\d/g)?.length ?? 0) > MAX_SHOWN_DIGITS) return false;
  return PLAIN_SEGMENT.test(segment) && !NOT_A_WORD.test(segment);
}

/**
 * A URL as errors, warnings and statuses show it: the origin (never a user name or password) and
 * the path with every segment that could be a secret replaced by "…"; no query string, no fragment.
 */
function shownUrl(url: URL): string {
  const path = url.pathname
    .split('/')
    .map((segment) => (plainSegment(segment) ? segment : REDACTED))
    .join('/');
  return `${url.origin}${path}`;
}

/** Text that failed to parse as a URL, as an error shows it: scheme, a host-like authority and plain segments; the rest "…". */
function shownText(raw: string): string {
  const head = raw.split(/[?#]/)[0];
  const start = /^([A-Za-z][A-Za-z0-9+.-]*:)?(\/\/)?/.exec(head) as RegExpExecArray;
  let rest = head.slice(start[0].length);
  let authority = '';
  if (start[2]) {
    const end = rest.search(/[/\s]/);
    authority = end === -1 ? rest : rest.slice(0, end);
    rest = rest.slice(authority.length);
    if (authority !== '' && !HOST_LIKE.test(authority)) authority = REDACTED;
  }
  const path = rest
    .split(/([/\s]+)/)
    .map((part, i) => (i % 2 === 1 || plainSegment(part) ? part : REDACTED))
    .join('');
  return `${start[1] ?? ''}${start[2] ?? ''}${authority}${path}`;
}

/** The parts of a URL that shownUrl hides (secret-looking path segments, query values), in the forms they may take in a text. */
function hiddenParts(url: URL): string[] {
  const parts: string[] = [];
  for (const segment of url.pathname.split('/')) if (!plainSegment(segment)) parts.push(segment, safeDecode(segment));
  // query values, and names that stand alone (?TOKEN); the names of name=value pairs stay readable
  for (const [name, value] of url.searchParams) parts.push(...(value === '' ? [name, encodeURIComponent(name)] : [value, encodeURIComponent(value)]));
  if (url.search) parts.push(url.search.slice(1));
  return parts;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Replaces every given secret (4 characters or more) in a text by "…", in every form it may take (as is, JSON-escaped, percent-encoded). */
function scrub(text: string, secrets: readonly string[]): string {
  return scrubText(text, secrets);
}

/** A failed upstream request; `retryable` failures (network, timeout, 5xx, 408, 429, unreadable or too large body) may be answered from a stale copy. */
class UpstreamError extends CacheError {
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
function encodeUpstreamError(error: unknown): unknown {
  if (!(error instanceof UpstreamError)) return undefined;
  return { code: error.code, message: error.message, retryable: error.retryable, statusCode: error.statusCode };
}

/** The failure another process's flight ended with, as this process's own UpstreamError. */
function decodeUpstreamError(data: unknown): Error {
  const failure = (data ?? {}) as { code?: ErrorCode; message?: string; retryable?: boolean; statusCode?: number };
  const statusCode = typeof failure.statusCode === 'number' ? failure.statusCode : undefined;
  return new UpstreamError(failure.code ?? 'UPSTREAM_UNREACHABLE', String(failure.message ?? ''), failure.retryable !== false, statusCode);
}

/**
 * The cache key of a request: a sha256 of method and URL (and a POST body, and the digest of the
 * credential it is made with), so no secret in the URL is stored in clear and answers fetched with
 * different credentials never share a key. Without a credential the key is as it always was.
 */
function derivedKey(method: string, url: string, body: string | Buffer | undefined, credential: string): string {
  const hash = createHash('sha256').update(`${method} ${url}`);
  if (body !== undefined) hash.update('\n').update(createHash('sha256').update(body).digest('hex'));
  if (credential !== '') hash.update(`\ncredential ${credential}`);
  return `fetch:${hash.digest('hex')}`;
}

/** A one-way digest of a credential: where it goes (a header name, or the URL) and its value. */
function credentialDigest(where: string, secret: string): string {
  return pbkdf2Sync(`${where.toLowerCase()}\n${secret}`, CREDENTIAL_SALT, CREDENTIAL_ROUNDS, 16, 'sha256').toString('hex');
}

/** When a stored response was fetched: its own stamp (entries stored before it was kept: the store's). */
function fetchedAtOf(entry: Entry): number {
  const { fetchedAt } = entry.value as StoredResponse;
  return typeof fetchedAt === 'number' && Number.isFinite(fetchedAt) ? fetchedAt : entry.storedAt;
}

function isStoredResponse(value: unknown): value is StoredResponse {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<StoredResponse>;
  return RETURN_TYPES.includes(v.kind as BodyKind) && typeof v.statusCode === 'number' && 'body' in v;
}

/** The response body in the form it is stored for a return type (json: parsed; text: string; buffer: Buffer). */
function storedBody(raw: Buffer, kind: BodyKind, shown: string): unknown {
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

/** A private copy of a stored body in the wanted form (a cached entry may have been stored for another return type). */
function bodyAs(stored: StoredResponse, wanted: BodyKind): unknown {
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
    throw new InputError(tf('errors.cachedNotJson'));
  }
}

function timeoutError(shown: string, timeoutS: number): UpstreamError {
  return new UpstreamError('UPSTREAM_TIMEOUT', tf('errors.timedOut', { url: shown, seconds: timeoutS }), true);
}

function closingError(shown: string): UpstreamError {
  return new UpstreamError('UPSTREAM_ABORTED', tf('errors.cancelled', { url: shown }), false);
}

function tooLargeError(shown: string, limitBytes: number, declared?: number): UpstreamError {
  const size = declared === undefined ? tf('errors.moreThan', { size: formatBytes(limitBytes) }) : formatBytes(declared);
  return new UpstreamError('UPSTREAM_TOO_LARGE', tf('errors.tooLarge', { url: shown, size, limit: formatBytes(limitBytes) }), true);
}

function requestBody(payload: unknown): { body: string | Buffer | undefined; contentType: string | undefined } {
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
function fixedOrigin(configUrl: string): string | undefined {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(configUrl)?.[0];
  if (!authority || authority.includes('{{')) return undefined;
  try {
    const url = new URL(authority);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

const ignore = () => undefined;

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  function TtlFetch(this: Node, config: TtlFetchConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new StatusReporter(node);
    const configUrl = (config.url ?? '').trim();
    const method = (config.method || 'GET').toUpperCase();
    const returnType = (config.returnType || 'json') as BodyKind;
    const ttlUnits = config.ttlUnits || 'minutes';
    const staleIfError = config.staleIfError !== false && config.staleIfError !== 'false';
    const derived = (config.key ?? '').trim() === '';
    const secret = node.credentials?.secret || undefined;
    // {{secret}} in the URL puts the credential there (an API key in the query) instead of in a header
    const secretInUrl = new RegExp(SECRET_PLACEHOLDER.source).test(configUrl);
    const secretHeaderName = (config.secretHeader || 'Authorization').trim();
    // the secret goes only to the origin of the configured URL: never to a msg.url elsewhere, never after a redirect elsewhere
    const secretOrigin = fixedOrigin(configUrl);
    // what a text shown to the flow or the log must never hold
    const secretForms = secret ? secretFormsOf(secret) : [];
    let ttlMs: number;
    let keepSeconds: number;
    let timeoutS: number;
    let timeoutMs: number;
    let maxResponseBytes: number;
    let headers: Record<string, string>;
    let headerCredential = '';
    let urlCredential = '';
    let binding: StoreBinding;
    try {
      if (!METHODS.includes(method)) throw new InputError(tf('errors.method', { choices: METHODS.join(', '), value: describe(config.method) }));
      if (!RETURN_TYPES.includes(returnType))
        throw new InputError(tf('errors.returnType', { choices: RETURN_TYPES.join(', '), value: describe(config.returnType) }));
      if (!(ttlUnits in TTL_UNITS))
        throw new InputError(tf('errors.ttlUnits', { choices: Object.keys(TTL_UNITS).join(', '), value: describe(config.ttlUnits) }));
      const ttl = configNumber(config.ttl, DEFAULT_TTL);
      if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new InputError(tf('errors.ttl', { value: describe(config.ttl) }));
      const ttlSeconds = ttl * TTL_UNITS[ttlUnits];
      ttlMs = Math.round(ttlSeconds * 1000);
      keepSeconds = staleIfError ? ttlSeconds + Math.max(MIN_STALE_KEEP_S, STALE_KEEP_FACTOR * ttlSeconds) : ttlSeconds;
      timeoutS = configNumber(config.timeout, DEFAULT_TIMEOUT_S);
      if (typeof timeoutS !== 'number' || !Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > MAX_TIMEOUT_S) {
        throw new InputError(tf('errors.timeout', { max: MAX_TIMEOUT_S, value: describe(config.timeout) }));
      }
      timeoutMs = Math.round(timeoutS * 1000);
      const maxResponseMb = configNumber(config.maxResponseMb, DEFAULT_MAX_RESPONSE_MB);
      if (!Number.isFinite(maxResponseMb) || maxResponseMb <= 0 || maxResponseMb > MAX_MAX_RESPONSE_MB) {
        throw new InputError(tf('errors.sizeLimit', { max: MAX_MAX_RESPONSE_MB, value: describe(config.maxResponseMb) }));
      }
      maxResponseBytes = Math.max(1, Math.floor(maxResponseMb * 1024 * 1024));
      if (derived) {
        if (!(KEY_TYPES as readonly string[]).includes(config.keyType || 'msg'))
          throw new InputError(shared('keyTypeUnknown', { type: String(config.keyType) }));
      } else {
        checkKeyConfig(config);
      }
      if (secretInUrl && !secret) throw new InputError(tf('errors.secretMissing'));
      if (secret && !secretInUrl && !secretOrigin) {
        throw new InputError(tf(configUrl === '' ? 'errors.secretNoUrl' : 'errors.secretNoOrigin'));
      }
      headers = headerSet(config);
      if (secret && !secretInUrl) {
        if (!HEADER_NAME.test(secretHeaderName)) throw new InputError(tf('errors.secretHeaderName', { name: describe(secretHeaderName) }));
        if (BAD_HEADER_VALUE.test(secret)) throw new InputError(tf('errors.secretHeaderValue', { name: secretHeaderName }));
        for (const name of Object.keys(headers)) if (name.toLowerCase() === secretHeaderName.toLowerCase()) delete headers[name];
        headerCredential = credentialDigest(secretHeaderName, secret);
      }
      if (secret && secretInUrl) urlCredential = credentialDigest('{{secret}}', secret);
      binding = new StoreBinding(RED, node, config.store, status);
    } catch (error) {
      rejectAll(node, status, error);
      return;
    }

    const flights = new Map<string, Promise<Entry>>();
    const active = new Set<Promise<void>>();
    // the exchanges under way, each with the function that cancels it (called when the node closes)
    const exchanges = new Set<() => void>();
    let closed = false;
    const warned = new WeakSet<Error>();
    let hits = 0;
    let misses = 0;

    /** The URL, cache key and body for one message; bad input is an InputError and nothing is fetched. */
    async function resolveRequest(msg: NodeMessage): Promise<FetchRequest> {
      let raw: string;
      let fromConfig = false;
      if (msg.url !== undefined && msg.url !== null && msg.url !== '') {
        if (typeof msg.url !== 'string') throw new InputError(tf('errors.msgUrl', { value: describe(msg.url) }));
        raw = msg.url.trim();
      } else {
        if (!configUrl) throw new InputError(tf('errors.noUrl'));
        const template = secretInUrl ? configUrl.replace(SECRET_PLACEHOLDER, encodeURIComponent(secret as string)) : configUrl;
        raw = fillPlaceholders(RED, template, msg, 'URL');
        fromConfig = true;
      }
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        throw new InputError(tf('errors.malformedUrl', { url: describe(scrub(shownText(raw), secretForms)) }));
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new InputError(tf('errors.protocol', { value: describe(`${parsed.protocol}//`) }));
      }
      if (parsed.username || parsed.password) {
        throw new InputError(tf('errors.userInfo'));
      }
      parsed.hash = '';
      const sendSecret = headerCredential !== '' && parsed.origin === secretOrigin;
      const credential = sendSecret ? headerCredential : fromConfig ? urlCredential : '';
      const shown = scrub(shownUrl(parsed), secretForms);
      const { body, contentType } = method === 'POST' ? requestBody(msg.payload) : { body: undefined, contentType: undefined };
      const key = derived ? derivedKey(method, parsed.href, body, credential) : await resolveKey(RED, node, config, msg);
      return { url: parsed, shown, key, credential, sendSecret, body, contentType };
    }

    /** The headers of one request of an exchange: the secret one only to its origin, origin-bound ones only to the first origin. */
    function headersFor(url: URL, first: URL, sendSecret: boolean, contentType: string | undefined): Record<string, string> {
      const result: Record<string, string> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (url.origin !== first.origin && ORIGIN_BOUND_HEADERS.has(name.toLowerCase())) continue;
        result[name] = value;
      }
      if (contentType && !Object.keys(result).some((h) => h.toLowerCase() === 'content-type')) result['content-type'] = contentType;
      if (sendSecret && secret && url.origin === secretOrigin) result[secretHeaderName] = secret;
      return result;
    }

    /**
     * The whole exchange: the request, every redirect (followed here, so the secret never leaves its
     * origin) and the body, all within the timeout and the size limit. Returns the final 2xx
     * response's status, content type and body; throws an UpstreamError for every other outcome.
     */
    async function exchange(request: FetchRequest): Promise<{ statusCode: number; contentType: string | null; raw: Buffer; shown: string }> {
      const controller = new AbortController();
      let failure: UpstreamError | undefined;
      let rejectStopped: (error: UpstreamError) => void = ignore;
      const stopped = new Promise<never>((_resolve, reject) => {
        rejectStopped = reject;
      });
      stopped.catch(ignore);
      const stop = (error: UpstreamError) => {
        if (failure) return;
        failure = error;
        controller.abort(error);
        rejectStopped(error);
      };
      // a timer of its own: a combined AbortSignal.any(AbortSignal.timeout(...)) can be collected and never fire (Node 20)
      const timer = setTimeout(() => stop(timeoutError(request.shown, timeoutS)), timeoutMs);
      const onClosing = () => stop(closingError(request.shown));
      if (closed) onClosing();
      else exchanges.add(onClosing);
      const hidden = [...secretForms, ...hiddenParts(request.url)];
      try {
        let url = request.url;
        let hopMethod = method;
        let body = request.body;
        let contentType = request.contentType;
        let sendSecret = request.sendSecret;
        for (let redirects = 0; ; redirects++) {
          const shown = url === request.url ? request.shown : scrub(shownUrl(url), hidden);
          let response: Response;
          try {
            response = await Promise.race([
              fetch(url.href, {
                method: hopMethod,
                headers: headersFor(url, request.url, sendSecret, body === undefined ? undefined : contentType),
                body,
                signal: controller.signal,
                redirect: 'manual',
              }),
              stopped,
            ]);
          } catch (error) {
            if (failure) throw failure;
            const err = error as { message?: string; cause?: { code?: string; message?: string } };
            const reason = err?.cause?.message || err?.cause?.code || err?.message || String(error);
            throw new UpstreamError('UPSTREAM_UNREACHABLE', tf('errors.failed', { url: shown, cause: scrub(reason, hidden) }), true);
          }
          const location = response.headers.get('location');
          if (REDIRECT_STATUSES.has(response.status) && location !== null) {
            response.body?.cancel().catch(ignore);
            if (redirects >= MAX_REDIRECTS)
              throw new UpstreamError('UPSTREAM_UNREACHABLE', tf('errors.redirects', { url: request.shown, max: MAX_REDIRECTS }), true);
            let next: URL;
            try {
              next = new URL(location, url);
            } catch {
              throw new UpstreamError('UPSTREAM_UNREACHABLE', tf('errors.redirectMalformed', { url: shown }), true);
            }
            if ((next.protocol !== 'http:' && next.protocol !== 'https:') || next.username || next.password) {
              throw new UpstreamError('UPSTREAM_UNREACHABLE', tf('errors.redirectProtocol', { url: shown }), true);
            }
            next.hash = '';
            hidden.push(...hiddenParts(next));
            // as browsers do: 303 turns every method but HEAD into GET, 301 and 302 turn a POST into GET; 307 and 308 keep both
            if ((response.status === 303 && hopMethod !== 'HEAD') || ((response.status === 301 || response.status === 302) && hopMethod === 'POST')) {
              hopMethod = 'GET';
              body = undefined;
              contentType = undefined;
            }
            // once the exchange has left the configured origin, the secret is not sent again, even back there
            if (next.origin !== url.origin) sendSecret = false;
            url = next;
            continue;
          }
          if (response.status < 200 || response.status > 299) {
            response.body?.cancel().catch(ignore);
            const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
            const reason = response.statusText ? ` ${scrub(response.statusText, hidden)}` : '';
            throw new UpstreamError('UPSTREAM_HTTP', tf('errors.http', { url: shown, status: response.status, reason }), retryable, response.status);
          }
          const raw = hopMethod === 'HEAD' ? emptyBody(response) : await readBody(response, shown, stopped);
          return { statusCode: response.status, contentType: response.headers.get('content-type'), raw, shown };
        }
      } catch (error) {
        if (failure) throw failure;
        throw error;
      } finally {
        clearTimeout(timer);
        exchanges.delete(onClosing);
        // whatever is left of the exchange (an unread body, a socket) goes
        if (!failure) controller.abort();
      }
    }

    function emptyBody(response: Response): Buffer {
      response.body?.cancel().catch(ignore);
      return Buffer.alloc(0);
    }

    /** Reads a body up to the size limit; `stopped` rejects once the exchange times out or the node closes. */
    async function readBody(response: Response, shown: string, stopped: Promise<never>): Promise<Buffer> {
      if (!response.body) return Buffer.alloc(0);
      const declared = Number(response.headers.get('content-length') ?? Number.NaN);
      // the declared length counts encoded bytes: compared only when the body is not compressed
      if (!response.headers.get('content-encoding') && Number.isFinite(declared) && declared > maxResponseBytes) {
        response.body.cancel().catch(ignore);
        throw tooLargeError(shown, maxResponseBytes, declared);
      }
      const reader = response.body.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      let finished = false;
      try {
        for (;;) {
          const { done, value } = await Promise.race([reader.read(), stopped]);
          if (done) break;
          size += value.byteLength;
          if (size > maxResponseBytes) throw tooLargeError(shown, maxResponseBytes);
          chunks.push(value);
        }
        finished = true;
      } finally {
        if (!finished) reader.cancel().catch(ignore);
      }
      return Buffer.concat(chunks, size);
    }

    /** Fetches a response and stores it (2xx only); throws an UpstreamError for every other outcome. */
    async function fetchAndStore(request: FetchRequest, cache: CacheSpace): Promise<Entry> {
      const { statusCode, contentType, raw, shown } = await exchange(request);
      // an answer that repeats the node's secret or a credential of its URL (appid=, token=...) is stored
      // without it, in whatever form it came back: no reader of the store needs this node to hide it
      const hidden = [...secretForms, ...urlSecretsOf(request.url)];
      const body = scrubValue(storedBody(raw, returnType, shown), hidden);
      const stored: StoredResponse = { kind: returnType, body, statusCode, contentType, url: request.shown, fetchedAt: now() };
      if (request.credential !== '') stored.credential = request.credential;
      return cache.set(request.key, stored, keepSeconds);
    }

    /**
     * One upstream request per key and credential at a time: concurrent misses wait for the same
     * answer, but none longer than the timeout from when it began to wait.
     */
    function fetchOnce(request: FetchRequest, cache: CacheSpace): Promise<Entry> {
      const flightKey = `${request.credential}\n${request.key}`;
      const flight = flights.get(flightKey);
      if (!flight) {
        // on a shared store (Redis) the flight is also one among processes: the others wait for this answer
        const started = cache
          .singleFlight(flightKey, () => fetchAndStore(request, cache), {
            key: request.key,
            holdMs: timeoutMs + FLIGHT_HOLD_MARGIN_MS,
            waitMs: timeoutMs,
            timeout: () => timeoutError(request.shown, timeoutS),
            encodeError: encodeUpstreamError,
            decodeError: decodeUpstreamError,
          })
          .finally(() => flights.delete(flightKey));
        flights.set(flightKey, started);
        return started;
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(timeoutError(request.shown, timeoutS)), timeoutMs);
      });
      return Promise.race([flight, deadline]).finally(() => clearTimeout(timer));
    }

    function deliver(msg: NodeMessage, send: SendFunction, key: string, entry: Entry, hit: boolean, stale: boolean): void {
      const stored = entry.value as StoredResponse;
      const fetchedAt = fetchedAtOf(entry);
      msg.payload = bodyAs(stored, returnType);
      msg.statusCode = stored.statusCode;
      msg.cache = {
        key,
        hit,
        stale,
        storedAt: isoInZone(fetchedAt, binding.zone),
        age: Math.max(0, now() - fetchedAt),
        contentType: stored.contentType,
      };
      send(msg);
    }

    async function handle(msg: NodeMessage, send: SendFunction): Promise<void> {
      const request = await resolveRequest(msg);
      const cache = await binding.namespace();
      const found = await cache.get(request.key);
      // an answer fetched with another credential (or none) is not this request's answer, not even as a stale copy
      const entry = found && isStoredResponse(found.value) && (found.value.credential ?? '') === request.credential ? found : undefined;
      // fresh only while its age is in [0, TTL): an answer stamped in the future (the clock went back) is stale
      const age = entry ? now() - fetchedAtOf(entry) : Number.NaN;
      const fresh = entry !== undefined && age >= 0 && age < ttlMs;
      if (entry && fresh && msg.refresh !== true) {
        deliver(msg, send, request.key, entry, true, false);
        hits++;
        status.set(() => ({ fill: 'green', shape: 'dot', text: tf('status.hit', { hits, misses }) }));
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
          node.warn(tf('warnings.servingCached', { cause: error.message, seconds: Math.round(Math.max(0, now() - fetchedAtOf(entry)) / 1000) }));
        }
        deliver(msg, send, request.key, entry, true, !fresh);
        hits++;
        const reason = error.statusCode ?? error.code.replace('UPSTREAM_', '').toLowerCase();
        status.set(() => ({ fill: 'yellow', shape: 'ring', text: tf(fresh ? 'status.cached' : 'status.stale', { reason, hits, misses }) }));
        return;
      }
      deliver(msg, send, request.key, fetched, false, false);
      misses++;
      const statusCode = (fetched.value as StoredResponse).statusCode;
      status.set(() => ({ fill: 'blue', shape: 'dot', text: tf('status.fetched', { status: statusCode, hits, misses }) }));
    }

    onInput(node, status, (msg, send) => {
      const work = handle(msg, send);
      const tracked = work.catch(ignore);
      active.add(tracked);
      tracked.then(() => active.delete(tracked));
      return work;
    });

    releaseOnClose(node, status, binding, () => {
      closed = true;
      for (const cancel of [...exchanges]) cancel();
      return Promise.allSettled([...active]);
    });
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

  RED.nodes.registerType('ttl-fetch', TtlFetch, { credentials: { secret: { type: 'password' } } });
};
