// ttl-fetch: an HTTP request with a persistent response cache. The node is the glue between Node-RED and
// its parts: what it decides (settings, freshness, stale-if-error) is in red/fetch-rules.ts, one HTTP
// exchange in red/fetch-exchange.ts, what a URL may show in red/fetch-url.ts.
import { now } from './lib/clock';
import { InputError } from './lib/errors';
import type { CacheSpace } from './lib/space';
import type { Entry } from './lib/store';
import type { Node, NodeAPI, NodeMessage, SendFunction } from './red/api';
import { StoreBinding } from './red/binding';
import { type ExchangeContext, exchange } from './red/fetch-exchange';
import {
  bodyAs,
  decodeUpstreamError,
  encodeUpstreamError,
  type FetchRequest,
  type FetchSettings,
  FLIGHT_HOLD_MARGIN_MS,
  fetchedAtOf,
  fetchSettings,
  judgeCached,
  requestBody,
  SECRET_PLACEHOLDER,
  type StoredResponse,
  servesStale,
  storedBody,
  type TtlFetchConfig,
  tf,
  timeoutError,
  UpstreamError,
} from './red/fetch-rules';
import { derivedFetchKey, scrubText, scrubValue, secretForms as secretFormsOf, shownText, shownUrl, urlSecretsOf } from './red/fetch-url';
import { bindRuntime } from './red/i18n';
import { describe, fillPlaceholders, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { StatusReporter } from './red/status';
import { isoInZone } from './red/time';

const ignore = () => undefined;
/** URLs whose request a node keeps worked out (a node fetches a few URLs, or a few hundred with placeholders). */
const RESOLVED_URLS = 1_000;
const MEMO_URL_CHARS = 2_048;

export = (RED: NodeAPI) => {
  bindRuntime(RED);

  function TtlFetch(this: Node, config: TtlFetchConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new StatusReporter(node);
    const secret = node.credentials?.secret || undefined;
    // what a text shown to the flow or the log must never hold
    const secretForms = secret ? secretFormsOf(secret) : [];
    let settings: FetchSettings;
    let binding: StoreBinding;
    try {
      settings = fetchSettings(config, secret);
      binding = new StoreBinding(RED, node, config.store, status);
    } catch (error) {
      rejectAll(node, status, error);
      return;
    }
    const { configUrl, method, returnType, timeoutS, timeoutMs } = settings;

    const flights = new Map<string, Promise<Entry>>();
    const active = new Set<Promise<void>>();
    let closed = false;
    const context: ExchangeContext = { settings, secretForms, closed: () => closed, cancellers: new Set() };
    const warned = new WeakSet<Error>();
    let hits = 0;
    let misses = 0;
    /** Requests by URL (see resolveRequest); never changed once made, so messages may share one. */
    const resolved = new Map<string, FetchRequest>();

    /** The URL, cache key and body for one message; bad input is an InputError and nothing is fetched. */
    async function resolveRequest(msg: NodeMessage): Promise<FetchRequest> {
      let raw: string;
      let fromConfig = false;
      if (msg.url !== undefined && msg.url !== null && msg.url !== '') {
        if (typeof msg.url !== 'string') throw new InputError(tf('errors.msgUrl', { value: describe(msg.url) }));
        raw = msg.url.trim();
      } else {
        if (!configUrl) throw new InputError(tf('errors.noUrl'));
        const template = settings.secretInUrl ? configUrl.replace(SECRET_PLACEHOLDER, encodeURIComponent(secret as string)) : configUrl;
        raw = fillPlaceholders(RED, template, msg, 'URL');
        fromConfig = true;
      }
      // a GET or HEAD whose key is derived from its URL is the same request each time its URL is: the
      // parsed URL, what it shows and its key (a SHA-256) are worked out once per URL
      const memoKey = settings.derived && method !== 'POST' && raw.length <= MEMO_URL_CHARS ? `${fromConfig ? 'c' : 'm'}${raw}` : undefined;
      const known = memoKey === undefined ? undefined : resolved.get(memoKey);
      if (known) return known;
      const request = await parseRequest(raw, fromConfig, msg);
      if (memoKey !== undefined) {
        if (resolved.size >= RESOLVED_URLS) resolved.clear();
        resolved.set(memoKey, request);
      }
      return request;
    }

    /** The request for a URL (its text as the message or the configuration gives it). */
    async function parseRequest(raw: string, fromConfig: boolean, msg: NodeMessage): Promise<FetchRequest> {
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        throw new InputError(tf('errors.malformedUrl', { url: describe(scrubText(shownText(raw), secretForms)) }));
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new InputError(tf('errors.protocol', { value: describe(`${parsed.protocol}//`) }));
      }
      if (parsed.username || parsed.password) {
        throw new InputError(tf('errors.userInfo'));
      }
      parsed.hash = '';
      const sendSecret = settings.headerCredential !== '' && parsed.origin === settings.secretOrigin;
      const credential = sendSecret ? settings.headerCredential : fromConfig ? settings.urlCredential : '';
      const shown = scrubText(shownUrl(parsed), secretForms);
      const { body, contentType } = method === 'POST' ? requestBody(msg.payload) : { body: undefined, contentType: undefined };
      const key = settings.derived ? derivedFetchKey(method, parsed.href, credential, body) : await resolveKey(RED, node, config, msg);
      return { url: parsed, shown, key, credential, sendSecret, body, contentType };
    }

    /** Fetches a response and stores it (2xx only); throws an UpstreamError for every other outcome. */
    async function fetchAndStore(request: FetchRequest, cache: CacheSpace): Promise<Entry> {
      const { statusCode, contentType, raw, shown } = await exchange(request, context);
      // an answer that repeats the node's secret or a credential of its URL (appid=, token=...) is stored
      // without it, in whatever form it came back: no reader of the store needs this node to hide it
      const hidden = [...secretForms, ...urlSecretsOf(request.url)];
      const body = scrubValue(storedBody(raw, returnType, shown), hidden);
      const stored: StoredResponse = { kind: returnType, body, statusCode, contentType, url: request.shown, fetchedAt: now() };
      if (request.credential !== '') stored.credential = request.credential;
      return cache.set(request.key, stored, settings.keepSeconds);
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

    /** Puts an answer on the message; `shared`: other messages get the same entry (one fetch answers them all), so each gets a copy. */
    function deliver(msg: NodeMessage, send: SendFunction, key: string, entry: Entry, hit: boolean, stale: boolean, shared = false): void {
      const stored = entry.value as StoredResponse;
      const fetchedAt = fetchedAtOf(entry);
      msg.payload = bodyAs(stored, returnType, shared);
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
      const cached = judgeCached(await cache.get(request.key), request.credential, now(), settings.ttlMs);
      if (cached.entry && cached.fresh && msg.refresh !== true) {
        deliver(msg, send, request.key, cached.entry, true, false);
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
        if (!servesStale(error, cached, settings.staleIfError)) throw error;
        const failure = error as UpstreamError;
        const { entry, fresh } = cached;
        if (!warned.has(failure)) {
          warned.add(failure);
          node.warn(tf('warnings.servingCached', { cause: failure.message, seconds: Math.round(Math.max(0, now() - fetchedAtOf(entry)) / 1000) }));
        }
        deliver(msg, send, request.key, entry, true, !fresh);
        hits++;
        const reason = failure.statusCode ?? failure.code.replace('UPSTREAM_', '').toLowerCase();
        status.set(() => ({ fill: 'yellow', shape: 'ring', text: tf(fresh ? 'status.cached' : 'status.stale', { reason, hits, misses }) }));
        return;
      }
      deliver(msg, send, request.key, fetched, false, false, true);
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
      for (const cancel of [...context.cancellers]) cancel();
      return Promise.allSettled([...active]);
    });
  }

  RED.nodes.registerType('ttl-fetch', TtlFetch, { credentials: { secret: { type: 'password' } } });
};
