// One HTTP exchange of ttl-fetch: the request, every redirect (followed here, so the secret never leaves
// its origin) and the body, within the timeout and the size limit.

import {
  afterRedirect,
  closingError,
  type FetchRequest,
  type FetchSettings,
  MAX_REDIRECTS,
  ORIGIN_BOUND_HEADERS,
  REDIRECT_STATUSES,
  retryableStatus,
  tf,
  timeoutError,
  tooLargeError,
  UpstreamError,
} from './fetch-rules';
import { hiddenPartsOfRequest, scrubText, shownUrl } from './fetch-url';

const ignore = () => undefined;

/** The answer of an exchange: the final 2xx response's status, content type and body, and its URL as shown. */
export interface Exchanged {
  statusCode: number;
  contentType: string | null;
  raw: Buffer;
  shown: string;
}

/** What an exchange needs of its node. */
export interface ExchangeContext {
  settings: FetchSettings;
  /** Every form of the node's secret, which no text may show. */
  secretForms: readonly string[];
  /** Whether the node is closing (an exchange then ends at once). */
  closed(): boolean;
  /** The exchanges under way, each by the function that cancels it (called when the node closes). */
  cancellers: Set<() => void>;
}

/** The headers of one request of an exchange: the secret one only to its origin, origin-bound ones only to the first origin. */
function headersFor(settings: FetchSettings, url: URL, first: URL, sendSecret: boolean, contentType: string | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(settings.headers)) {
    if (url.origin !== first.origin && ORIGIN_BOUND_HEADERS.has(name.toLowerCase())) continue;
    result[name] = value;
  }
  if (contentType && !Object.keys(result).some((h) => h.toLowerCase() === 'content-type')) result['content-type'] = contentType;
  if (sendSecret && settings.secret && url.origin === settings.secretOrigin) result[settings.secretHeaderName] = settings.secret;
  return result;
}

/** Runs one exchange; throws an UpstreamError for every outcome but a 2xx answer. */
export async function exchange(request: FetchRequest, context: ExchangeContext): Promise<Exchanged> {
  const { settings } = context;
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
  const timer = setTimeout(() => stop(timeoutError(request.shown, settings.timeoutS)), settings.timeoutMs);
  const onClosing = () => stop(closingError(request.shown));
  if (context.closed()) onClosing();
  else context.cancellers.add(onClosing);
  const hidden = [...context.secretForms, ...hiddenPartsOfRequest(request.url)];
  try {
    let url = request.url;
    let hopMethod = settings.method;
    let body = request.body;
    let contentType = request.contentType;
    let sendSecret = request.sendSecret;
    for (let redirects = 0; ; redirects++) {
      const shown = url === request.url ? request.shown : scrubText(shownUrl(url), hidden);
      let response: Response;
      try {
        response = await Promise.race([
          fetch(url.href, {
            method: hopMethod,
            headers: headersFor(settings, url, request.url, sendSecret, body === undefined ? undefined : contentType),
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
        throw new UpstreamError('UPSTREAM_UNREACHABLE', tf('errors.failed', { url: shown, cause: scrubText(reason, hidden) }), true);
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
        hidden.push(...hiddenPartsOfRequest(next));
        const then = afterRedirect(response.status, hopMethod);
        hopMethod = then.method;
        if (!then.keepBody) {
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
        const reason = response.statusText ? ` ${scrubText(response.statusText, hidden)}` : '';
        throw new UpstreamError(
          'UPSTREAM_HTTP',
          tf('errors.http', { url: shown, status: response.status, reason }),
          retryableStatus(response.status),
          response.status,
        );
      }
      const raw = hopMethod === 'HEAD' ? emptyBody(response) : await readBody(response, shown, stopped, settings.maxResponseBytes);
      return { statusCode: response.status, contentType: response.headers.get('content-type'), raw, shown };
    }
  } catch (error) {
    if (failure) throw failure;
    throw error;
  } finally {
    clearTimeout(timer);
    context.cancellers.delete(onClosing);
    // whatever is left of the exchange (an unread body, a socket) goes
    if (!failure) controller.abort();
  }
}

function emptyBody(response: Response): Buffer {
  response.body?.cancel().catch(ignore);
  return Buffer.alloc(0);
}

/** Reads a body up to the size limit; `stopped` rejects once the exchange times out or the node closes. */
async function readBody(response: Response, shown: string, stopped: Promise<never>, maxResponseBytes: number): Promise<Buffer> {
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
