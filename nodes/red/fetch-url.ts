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

/** Whether a path segment can be shown: short, plain words, few digits. */
export function plainSegment(segment: string): boolean {
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
  // each part as it reads decoded: scrubText finds it in every encoding (as written, percent-encoded, JSON-escaped)
  const add = (part: string) => {
    if (part.length >= 4 && !plainSegment(part)) parts.push(safeDecode(part));
  };
  for (const segment of url.pathname.split('/')) add(segment);
  for (const [name, value] of url.searchParams) add(value === '' ? name : value);
  if (url.username) add(url.username);
  if (url.password) add(url.password);
  return [...new Set(parts)].filter((part) => part.length >= 4);
}

export function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The cache key of a ttl-fetch request: a sha256 of method and URL (and a POST body, and the digest of
 * the credential it is made with), so no secret in the URL is stored in clear and answers fetched with
 * different credentials never share a key.
 */
export function derivedFetchKey(method: string, href: string, credential: string, body?: string | Buffer): string {
  const hash = createHash('sha256').update(`${method} ${href}`);
  if (body !== undefined) hash.update('\n').update(createHash('sha256').update(body).digest('hex'));
  if (credential !== '') hash.update(`\ncredential ${credential}`);
  return `fetch:${hash.digest('hex')}`;
}

const digests = new Map<string, string>();

/** A one-way digest of a credential: where it goes (a header name, or the URL) and its value, salted and stretched. */
export function credentialDigest(where: string, secret: string): string {
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

/**
 * What of a secret no text may show: the secret, and the secret without an auth scheme ("Bearer ").
 * scrubText finds each in every form it comes back in (see secretPattern).
 */
export function secretForms(secret: string): string[] {
  const forms = [secret, secret.replace(/^\s*\S+\s+/, '')];
  return [...new Set(forms)].filter((form) => form.length >= MIN_SECRET).sort((a, b) => b.length - a.length);
}

// A query parameter whose name says its value is a credential (appid, api_key, access_token, password, ...).
const SECRET_PARAMETER = /key|token|secret|pass|pwd|auth|sig|appid|session|credential/i;
/** Shorter values of such a parameter, and plain words, are not taken for secrets (they would be found in ordinary data). */
const MIN_URL_SECRET = 8;

/**
 * The values of a URL's query that are credentials: a parameter named like one (appid, api_key,
 * token, password, signature...) whose value is at least 8 characters and not a plain word. These
 * are taken out of an answer before it is stored, as the node's own secret is.
 */
export function urlSecretsOf(url: URL): string[] {
  const found: string[] = [];
  for (const [name, value] of url.searchParams) {
    if (SECRET_PARAMETER.test(name) && value.length >= MIN_URL_SECRET && !plainSegment(value)) found.push(value);
  }
  return found;
}

const MIN_SECRET = 4;

function hexPattern(value: number, digits: number): string {
  return [...value.toString(16).padStart(digits, '0')].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * One character of a secret in every form a text may give it back: as is; JSON-escaped (a backslash
 * before it, as PHP writes \/, or \uXXXX in either case of hex, with the backslashes doubled once
 * or more by JSON inside JSON); percent-encoded (either case of hex, also encoded twice as %25XX;
 * '+' for a space); as an HTML numeric entity. `bytes`: the text is bytes read as latin1.
 */
function charPattern(char: string, bytes: boolean): string {
  const alternatives = [escapeRegExp(char), `\\\\+${escapeRegExp(char)}`];
  const point = char.codePointAt(0) ?? 0;
  if (!bytes || point < 0x80) {
    const units = point > 0xffff ? [Math.floor((point - 0x10000) / 0x400) + 0xd800, ((point - 0x10000) % 0x400) + 0xdc00] : [point];
    alternatives.push(units.map((unit) => `\\\\+u${hexPattern(unit, 4)}`).join(''));
    alternatives.push(`&#0*${point};`, `&#[xX]0*${hexPattern(point, 1).replace(/^0+(?=.)/, '')};`);
  }
  const encoded = bytes ? [point] : [...Buffer.from(char, 'utf8')];
  alternatives.push(encoded.map((byte) => `%(?:25)?${hexPattern(byte, 2)}`).join(''));
  if (char === ' ') alternatives.push('\\+');
  return `(?:${alternatives.join('|')})`;
}

const patterns = new Map<string, RegExp | null>();

/**
 * A pattern that finds every given secret (4 characters or more), longest first, in every form a
 * text may hold it: as it is, JSON-escaped (\/, \u002f, doubled backslashes), percent-encoded
 * (%2f or %2F) or a mix of these, character by character. `bytes`: for the latin1 view of a Buffer.
 */
export function secretPattern(secrets: readonly string[], bytes = false): RegExp | undefined {
  const memo = `${bytes ? 'b' : 't'}\n${secrets.join('\n')}`;
  let pattern = patterns.get(memo);
  if (pattern === undefined) {
    const usable = [...new Set(secrets)]
      .filter((secret) => secret.length >= MIN_SECRET)
      .map((secret) => (bytes ? Buffer.from(secret, 'utf8').toString('latin1') : secret))
      .sort((a, b) => b.length - a.length);
    pattern = usable.length === 0 ? null : new RegExp(usable.map((secret) => [...secret].map((char) => charPattern(char, bytes)).join('')).join('|'), 'g');
    if (patterns.size > 200) patterns.clear();
    patterns.set(memo, pattern);
  }
  return pattern ?? undefined;
}

/** A text with every given secret, in every form it may take (see secretPattern), replaced by "…". */
export function scrubText(text: string, secrets: readonly string[]): string {
  const pattern = secretPattern(secrets);
  return pattern ? text.replace(pattern, REDACTED) : text;
}

const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8').toString('latin1');

/** Bytes with every given secret (its UTF-8 bytes, in every form) replaced by "…". */
function scrubBytes(bytes: Buffer, secrets: readonly string[]): Buffer {
  const pattern = secretPattern(secrets, true);
  if (!pattern) return bytes;
  const text = bytes.toString('latin1');
  const result = text.replace(pattern, REDACTED_BYTES);
  return result === text ? bytes : Buffer.from(result, 'latin1');
}

/**
 * A copy of a value with every secret removed from its texts and bytes (strings, Buffers, object
 * keys, Map and Set members, at any depth), in every form a secret may take; the value itself is left as it is.
 */
export function scrubValue(value: unknown, forms: readonly string[], seen = new Map<object, unknown>()): unknown {
  if (forms.length === 0) return value;
  if (typeof value === 'string') return scrubText(value, forms);
  if (value === null || typeof value !== 'object') return value;
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (Buffer.isBuffer(value)) return scrubBytes(value, forms);
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

const HOST_LIKE = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** Text that failed to parse as a URL, as an error shows it: scheme, a host-like authority and plain segments; the rest "…". */
export function shownText(raw: string): string {
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
export function hiddenPartsOfRequest(url: URL): string[] {
  const parts: string[] = [];
  for (const segment of url.pathname.split('/')) if (!plainSegment(segment)) parts.push(segment, safeDecode(segment));
  // query values, and names that stand alone (?TOKEN); the names of name=value pairs stay readable
  for (const [name, value] of url.searchParams) parts.push(...(value === '' ? [name, encodeURIComponent(name)] : [value, encodeURIComponent(value)]));
  if (url.search) parts.push(url.search.slice(1));
  return parts;
}
