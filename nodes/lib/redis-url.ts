// What a Redis URL may show in a message, a log or the editor (never a login), and whether one carries
// a password where no password belongs.

/** A URL inside a longer text (a client's error) as it may be shown: user and password replaced. */
export function redactUrl(text: string): string {
  return text.replace(/\b(rediss?|https?):\/\/[^\s?#]*@/gi, '$1://***@');
}

// A host (name, IPv4 or [IPv6]) and an optional port of digits: all of an authority that is ever shown.
const SHOWN_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)(?::\d*)?$/;
// A query parameter whose name says it holds a login: its value is a password, whatever it is called.
const SECRET_PARAMETER = /pass|pwd|auth|token|secret/i;

/**
 * A Redis URL as a message may show it, whatever was typed: scheme, host and port, a path of digits
 * (a database number); everything else is "…". A user and password (userinfo of any shape: spaces,
 * '@' or '/' in it, percent-encoded) become "***@"; a query or fragment is never shown.
 */
export function shownRedisUrl(raw: string): string {
  const text = String(raw).trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  let rest = scheme ? text.slice(scheme[0].length) : text;
  const head = scheme ? `${scheme[1].toLowerCase()}://` : '';
  const at = rest.lastIndexOf('@');
  let login = '';
  if (at !== -1) {
    // an '@' after a '?' or '#' leaves no telling where a login ends and the host begins: nothing more is shown
    if (/[?#]/.test(rest.slice(0, at))) return `${head}…`;
    login = '***@';
    rest = rest.slice(at + 1);
  }
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? '' : rest.slice(end);
  const pathEnd = tail.search(/[?#]/);
  const pathPart = pathEnd === -1 ? tail : tail.slice(0, pathEnd);
  const after = pathEnd === -1 ? '' : tail.slice(pathEnd);
  const host = SHOWN_HOST.test(authority) ? authority : '…';
  const shownPath = /^(?:\/\d*)?$/.test(pathPart) ? pathPart : '/…';
  const query = after.startsWith('?') ? '?…' : '';
  const fragment = after.includes('#') ? '#…' : '';
  return `${head}${login}${host}${shownPath}${query}${fragment}`;
}

/**
 * Whether a Redis URL carries a password outside its userinfo: a fragment, or a query parameter named
 * like a password (password, pass, pwd, auth, token, secret: also percent-encoded).
 */
export function redisUrlHasSecret(raw: string): boolean {
  const text = String(raw).trim();
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text);
  const rest = scheme ? text.slice(scheme[0].length) : text;
  const hash = rest.indexOf('#');
  if (hash !== -1 && hash < rest.length - 1) return true;
  const question = rest.indexOf('?');
  if (question === -1) return false;
  const query = rest.slice(question + 1, hash === -1 ? undefined : hash);
  return query.split(/[&;]/).some((pair) => {
    const name = pair.split('=')[0];
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // a name that is not well-formed percent-encoding is judged as it is written
    }
    return SECRET_PARAMETER.test(decoded) || SECRET_PARAMETER.test(name);
  });
}
