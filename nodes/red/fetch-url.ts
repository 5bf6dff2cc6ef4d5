// What the admin API may say about a ttl-fetch answer: the URL it came from with everything that could
// be a secret removed, found from the cache key, and texts cleaned of the node's secret.
import { createHash, pbkdf2Sync } from 'node:crypto';

/** What a ttl-fetch node's configuration holds that decides its cache keys (as Node-RED keeps it in the flow). */
export interface FetchNodeConfig {
  id: string;
  type: string;
  url?: string;
  method?: string;
  key?: string;
  keyType?: string;
  secretHeader?: string;
}

const REDACTED = '…';
const SECRET_PLACEHOLDER = /\{\{\s*secret\s*\}\}/g;
const PLACEHOLDER = /\{\{[^{}]*\}\}/;
// the digest ttl-fetch makes of a credential (salt and rounds are part of its cache keys)
const CREDENTIAL_SALT = 'node-red-contrib-flow-cache/ttl-fetch credential';
const CREDENTIAL_ROUNDS = 10_000;

// A path segment shown as it is: at most 32 characters of words (lower case, Capitalized or camelCase,
// that look like words) and at most 4 digits, joined by - _ . , or a version (v1, v2.1): the rule
// ttl-fetch applies to the URLs it shows. Anything else (a token, an id, a hash, a percent-encoded
// value) is shown as "…".
const PIECE = '(?:[a-z]+(?:[A-Z][a-z]+)*|[A-Z][a-z]+(?:[A-Z][a-z]+)*|\\d{1,4})';
const PLAIN_SEGMENT = new RegExp(`^(?:${PIECE}(?:[-_.]${PIECE})*|v\\d{1,3}(?:\\.\\d{1,3})*)$`);
// random letters look like this, words seldom do: 21 letters in a row, or 5 consonants in a row
const NOT_A_WORD = /[A-Za-z]{21}|[b-df-hj-np-tv-xz]{5}/i;

function plainSegment(segment: string): boolean {
  if (segment === '') return true;
  if (segment.length > 32) return false;
  if ((segment.match(/\d/g)?.length ?? 0) > 4) return false;
  return PLAIN_SEGMENT.test(segment) && !NOT_A_WORD.test(segment);
}

/** A URL as the admin API shows it: origin (never a user name or password) and plain path segments; no query, no fragment. */
export function shownUrl(url: URL): string {
  const path = url.pathname
    .split('/')
    .map((segment) => (plainSegment(segment) ? segment : REDACTED))
    .join('/');
  return `${url.origin}${path}`;
}

/**
 * The parts of a ttl-fetch node's configured URL that could be secrets (path segments and query values
 * that are not plain words, as shownUrl tells them), in the forms a text may hold them: no answer may
 * show them, wherever they appear (an upstream that echoes its URL, say).
 */
export function hiddenPartsOf(configUrl: string): string[] {
  const raw = configUrl.replace(/\{\{[^{}]*\}\}/g, ' ').trim();
  const parts: string[] = [];
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return parts;
  }
  const add = (part: string) => {
    if (part.length >= 4 && !plainSegment(part)) parts.push(part, safeDecode(part), encodeURIComponent(safeDecode(part)));
  };
  for (const segment of url.pathname.split('/')) add(segment);
  for (const [name, value] of url.searchParams) add(value === '' ? name : value);
  if (url.username) add(url.username);
  if (url.password) add(url.password);
  return [...new Set(parts)].filter((part) => part.length >= 4);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The cache key ttl-fetch derives for a request without a body (GET, HEAD) made with `credential` ('' for none). */
export function derivedFetchKey(method: string, href: string, credential: string): string {
  const hash = createHash('sha256').update(`${method} ${href}`);
  if (credential !== '') hash.update(`\ncredential ${credential}`);
  return `fetch:${hash.digest('hex')}`;
}

const digests = new Map<string, string>();

function credentialDigest(where: string, secret: string): string {
  const memo = `${where.toLowerCase()}\n${secret}`;
  let digest = digests.get(memo);
  if (digest === undefined) {
    digest = pbkdf2Sync(memo, CREDENTIAL_SALT, CREDENTIAL_ROUNDS, 16, 'sha256').toString('hex');
    if (digests.size > 100) digests.clear();
    digests.set(memo, digest);
  }
  return digest;
}

/**
 * The URL (as shownUrl shows it) of the request a ttl-fetch entry answers, when one node's
 * configuration explains its key: the key derived from the node's fixed URL (GET or HEAD, with or
 * without its credential), or the node's own fixed text key. Undefined when no node explains it
 * (a URL with placeholders, msg.url, a POST body, a key from the message).
 */
export function urlOfFetchKey(key: string, nodes: readonly { config: FetchNodeConfig; secret?: string }[]): string | undefined {
  for (const { config, secret } of nodes) {
    const template = (config.url ?? '').trim();
    const secretInUrl = new RegExp(SECRET_PLACEHOLDER.source).test(template);
    const raw = secretInUrl && secret ? template.replace(SECRET_PLACEHOLDER, encodeURIComponent(secret)) : template;
    if (raw === '' || PLACEHOLDER.test(raw)) continue;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    url.hash = '';
    const ownKey = (config.key ?? '').trim();
    if (ownKey !== '') {
      if ((config.keyType || 'msg') === 'str' && !PLACEHOLDER.test(ownKey) && ownKey === key) return shownUrl(url);
      continue;
    }
    const method = (config.method || 'GET').toUpperCase();
    if (method === 'POST') continue;
    const credentials = [''];
    if (secret) credentials.push(credentialDigest(secretInUrl ? '{{secret}}' : (config.secretHeader || 'Authorization').trim(), secret));
    if (credentials.some((credential) => derivedFetchKey(method, url.href, credential) === key)) return shownUrl(url);
  }
  return undefined;
}

/** The forms a secret may take in a text (as it is, URL-encoded, JSON-escaped, without an auth scheme such as "Bearer "). */
export function secretForms(secret: string): string[] {
  const forms = [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1), secret.replace(/^\s*\S+\s+/, '')];
  return [...new Set(forms)].filter((form) => form.length >= 4).sort((a, b) => b.length - a.length);
}

/** A text with every form of the given secrets replaced by "…". */
export function scrubText(text: string, forms: readonly string[]): string {
  let result = text;
  for (const form of forms) if (result.includes(form)) result = result.split(form).join(REDACTED);
  return result;
}

/**
 * A copy of a value with every secret form removed from its texts and bytes (strings, Buffers, object
 * keys, Map and Set members, at any depth); the value itself is left as it is.
 */
export function scrubValue(value: unknown, forms: readonly string[], seen = new Map<object, unknown>()): unknown {
  if (forms.length === 0) return value;
  if (typeof value === 'string') return scrubText(value, forms);
  if (value === null || typeof value !== 'object') return value;
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (Buffer.isBuffer(value)) {
    let bytes: Buffer = value;
    for (const form of forms) bytes = replaceBytes(bytes, Buffer.from(form, 'utf8'), Buffer.from(REDACTED, 'utf8'));
    return bytes;
  }
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(scrubValue(item, forms, seen));
    return copy;
  }
  if (value instanceof Map) {
    const copy = new Map();
    seen.set(value, copy);
    for (const [k, v] of value) copy.set(scrubValue(k, forms, seen), scrubValue(v, forms, seen));
    return copy;
  }
  if (value instanceof Set) {
    const copy = new Set();
    seen.set(value, copy);
    for (const item of value) copy.add(scrubValue(item, forms, seen));
    return copy;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Date, DateTime: no text of their own
  const copy: Record<string, unknown> = {};
  seen.set(value, copy);
  for (const [k, v] of Object.entries(value)) copy[scrubText(k, forms)] = scrubValue(v, forms, seen);
  return copy;
}

function replaceBytes(bytes: Buffer, needle: Buffer, replacement: Buffer): Buffer {
  let at = bytes.indexOf(needle);
  if (at === -1) return bytes;
  const parts: Buffer[] = [];
  let from = 0;
  while (at !== -1) {
    parts.push(bytes.subarray(from, at), replacement);
    from = at + needle.length;
    at = bytes.indexOf(needle, from);
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}
