// The admin HTTP API under /flow-cache/ on Node-RED's admin app: what the stores hold, read with
// `flow-cache.read`, changed with `flow-cache.write`. Every change goes through the store operations
// the nodes use (atomic per key) and is committed before the answer. No route takes a file path: a
// store is named by id. Every answer is cleaned of the secrets of the deployed ttl-fetch nodes.
import { now } from '../lib/clock';
import { CacheError, messageOf } from '../lib/errors';
import { encodeValue } from '../lib/serialize';
import { type Entry, MAX_KEY_PAGE, type Store, type UpdateDecision } from '../lib/store';
import { COOLDOWN_PREFIX, describeEntry, describeKey, isNodeState, isPlainJson, isStoredResponse, kindOfKey } from './admin-entries';
import {
  type AdminRuntime,
  deployedNodes,
  describeNamespace,
  type FlowConfig,
  findStore,
  namespaceFromHex,
  type StoreRef,
  storeCatalogue,
  storeExists,
  usedNamespaces,
  withStore,
} from './admin-stores';
import { type FetchNodeConfig, hiddenPartsOf, scrubText, scrubValue, secretForms, urlOfFetchKey } from './fetch-url';
import { readState } from './gate-decisions';
import { gateFor } from './gates';
import { type Substitutions, text } from './i18n';
import { MAX_KEY_LENGTH } from './input';
import { hostZone } from './time';

/** The route prefix and the permissions, as settings.js adminAuth grants them. */
export const ADMIN_ROOT = '/flow-cache';
export const READ_PERMISSION = 'flow-cache.read';
export const WRITE_PERMISSION = 'flow-cache.write';
const DEFAULT_PAGE = 50;
const MAX_FILTER = 1024;

// the part of Express the routes use (Node-RED's admin app)
interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
  /** Set by Node-RED's authentication when adminAuth is on. */
  user?: { username?: string; permissions?: Scope };
  authInfo?: { scope?: Scope };
}
type Scope = string | string[];
interface AdminResponse {
  status(code: number): AdminResponse;
  set(field: string, value: string): AdminResponse;
  send(body: string | Buffer): void;
  headersSent?: boolean;
}
type Next = (error?: unknown) => void;
type Handler = (req: AdminRequest, res: AdminResponse, next: Next) => void;
type ErrorHandler = (error: unknown, req: AdminRequest, res: AdminResponse, next: Next) => void;
interface AdminApp {
  get(path: string, ...handlers: Handler[]): void;
  put(path: string, ...handlers: Handler[]): void;
  post(path: string, ...handlers: Handler[]): void;
  delete(path: string, ...handlers: Handler[]): void;
  use(path: string, handler: ErrorHandler): void;
}
/**
 * Whether an adminAuth scope grants a permission, as Node-RED decides it: '*' grants all, 'read' (or
 * '*.read') every '<x>.read', 'write' (or '*.write') every '<x>.write', and a permission grants itself.
 */
export function hasPermission(scope: Scope | undefined, permission: string): boolean {
  if (scope === undefined) return false;
  if (Array.isArray(scope)) return scope.some((s) => hasPermission(s, permission));
  if (scope === '*' || scope === permission) return true;
  if (scope === 'read' || scope === '*.read') return /^((.+)\.)?read$/.test(permission);
  if (scope === 'write' || scope === '*.write') return /^((.+)\.)?write$/.test(permission);
  return false;
}

interface AdminAPI extends AdminRuntime {
  log: AdminRuntime['log'] & { audit?(event: object, req?: unknown): void };
  httpAdmin?: AdminApp;
  auth?: { needsPermission(permission: string): Handler };
}

/** An answer other than 200: an HTTP status and a text from the catalogue. */
class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const registered = new WeakSet<object>();

/** Adds the routes to Node-RED's admin app, once per app (the module's init may run again in tests). */
export function registerAdminApi(RED: AdminAPI): void {
  const app = RED.httpAdmin;
  if (!app || typeof app.get !== 'function' || registered.has(app)) return;
  registered.add(app);
  const admin = new AdminRoutes(RED);
  // Node-RED's own check authenticates the request (401 without a valid token when adminAuth is on);
  // the permission is checked here, so a user who may read but not change gets 403, not Node-RED's 401
  const authenticate: Handler = RED.auth?.needsPermission ? RED.auth.needsPermission('') : (_req, _res, next) => next();
  const allow =
    (permission: string): Handler =>
    (req, res, next) =>
      authenticate(req, res, (error?: unknown) => {
        if (error) return next(error);
        if (!req.user || hasPermission(req.authInfo?.scope ?? req.user.permissions, permission)) return next();
        RED.log.audit?.({ event: 'permission.fail', permissions: permission }, req);
        admin.reply(res, 403, { error: 'forbidden', message: admin.text('errors.forbidden', { permission }) });
      });
  const read = allow(READ_PERMISSION);
  const write = allow(WRITE_PERMISSION);
  const ns = `${ADMIN_ROOT}/stores/:store/namespaces/:namespace`;
  app.get(
    `${ADMIN_ROOT}/stores`,
    read,
    admin.handle((req) => admin.stores(req)),
  );
  app.get(
    `${ADMIN_ROOT}/stores/:store/namespaces`,
    read,
    admin.handle((req) => admin.namespaces(req)),
  );
  app.get(
    `${ns}/keys`,
    read,
    admin.handle((req) => admin.keys(req)),
  );
  app.get(
    `${ns}/entries/:key`,
    read,
    admin.handle((req) => admin.entry(req)),
  );
  app.put(
    `${ns}/entries/:key`,
    write,
    admin.handle((req) => admin.change(req)),
  );
  app.delete(
    `${ns}/entries/:key`,
    write,
    admin.handle((req) => admin.deleteEntry(req)),
  );
  app.delete(
    ns,
    write,
    admin.handle((req) => admin.clear(req)),
  );
  app.post(
    `${ADMIN_ROOT}/stores/:store/purge-expired`,
    write,
    admin.handle((req) => admin.purge(req)),
  );
  // a key that is not well-encoded fails before the routes (a body that is not JSON fails earlier still,
  // in the editor API's own parser, which answers 400 with its message as every admin route gets it)
  app.use(ADMIN_ROOT, (error, _req, res, next) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: number })?.status;
    admin.reply(res, status && status >= 400 && status < 500 ? status : 400, {
      error: 'bad_request',
      message: admin.text('errors.badRequest', { reason: messageOf(error) }),
    });
  });
}

/** An answer: JSON, or a download. */
type Answer = { json: unknown } | { download: string; name: string };

interface Context {
  nodes: FlowConfig[];
  stores: StoreRef[];
  secrets: string[];
}

class AdminRoutes {
  constructor(private readonly RED: AdminAPI) {}

  text(key: string, substitutions?: Substitutions): string {
    return text(this.RED, 'cache-store', `admin.${key}`, substitutions);
  }

  private fail(status: number, code: string, key: string, substitutions?: Substitutions): never {
    throw new AdminError(status, code, this.text(key, substitutions));
  }

  /** What the deployed flows hold now: nodes, stores, the secrets no answer may show. */
  private context(): Context {
    const nodes = deployedNodes(this.RED);
    const secrets: string[] = [];
    for (const node of nodes) {
      if (node.type !== 'ttl-fetch') continue;
      const secret = this.secretOf(node.id);
      if (secret) secrets.push(...secretForms(secret));
      // what ttl-fetch hides of its URL (tokens in the path or the query) stays hidden here too
      if (typeof node.url === 'string') secrets.push(...hiddenPartsOf(node.url));
    }
    return { nodes, stores: storeCatalogue(this.RED, nodes), secrets: [...new Set(secrets)].sort((a, b) => b.length - a.length) };
  }

  private secretOf(id: string): string | undefined {
    const running = this.RED.nodes.getNode(id) as { credentials?: Record<string, unknown> } | null;
    const secret = running?.credentials?.secret ?? this.RED.nodes.getCredentials?.(id)?.secret;
    return typeof secret === 'string' && secret !== '' ? secret : undefined;
  }

  handle(task: (req: AdminRequest) => Promise<Answer>): Handler {
    return (req, res) => {
      let context: Context | undefined;
      Promise.resolve()
        .then(() => {
          context = this.context();
          (req as AdminRequest & { flowCache?: Context }).flowCache = context;
          return task(req);
        })
        .then(
          (answer) => {
            if ('download' in answer) {
              const name = answer.name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100) || 'value';
              res.set('content-disposition', `attachment; filename="${name}.json"`);
              this.reply(res, 200, answer.download, context?.secrets, true);
            } else {
              this.reply(res, 200, answer.json, context?.secrets);
            }
          },
          (error: unknown) => {
            const { status, body } = this.failure(error);
            this.reply(res, status, body, context?.secrets);
          },
        )
        .catch((error: unknown) => this.RED.log.error(`flow cache admin API: ${messageOf(error)}`));
    };
  }

  private failure(error: unknown): { status: number; body: { error: string; message: string; code?: string } } {
    if (error instanceof AdminError) return { status: error.status, body: { error: error.code, message: error.message } };
    if (error instanceof CacheError) {
      const status =
        error.code.startsWith('INVALID_') || error.code === 'UNSTORABLE_VALUE' || error.code === 'NOT_A_COUNT'
          ? 400
          : error.code === 'STORE_FULL'
            ? 507
            : error.code === 'STORE_LOCKED' || error.code === 'STORE_FOREIGN_FILE'
              ? 409
              : error.code === 'STORE_CLOSED'
                ? 503
                : 500;
      return { status, body: { error: status === 400 ? 'bad_request' : 'store_error', code: error.code, message: error.message } };
    }
    this.RED.log.error(`flow cache admin API: ${messageOf(error)}`);
    return { status: 500, body: { error: 'internal', message: messageOf(error) } };
  }

  reply(res: AdminResponse, status: number, body: unknown, secrets: string[] = [], raw = false): void {
    const textBody = scrubText(raw ? String(body) : JSON.stringify(body), secrets);
    res.status(status).set('content-type', 'application/json; charset=utf-8').set('cache-control', 'no-store').send(textBody);
  }

  private ctx(req: AdminRequest): Context {
    return (req as AdminRequest & { flowCache?: Context }).flowCache ?? this.context();
  }

  private store(req: AdminRequest): StoreRef {
    const id = String(req.params.store ?? '');
    const store = findStore(this.ctx(req).stores, id);
    if (!store) this.fail(404, 'unknown_store', 'errors.unknownStore', { id });
    if (!store.file) this.fail(409, 'store_invalid', 'errors.storeInvalid', { id, reason: store.error ?? '' });
    return store;
  }

  private namespaceOf(req: AdminRequest): string {
    const hex = String(req.params.namespace ?? '');
    const name = namespaceFromHex(hex);
    if (name === undefined) this.fail(400, 'bad_request', 'errors.badNamespace', { value: hex.slice(0, 80) });
    return name;
  }

  private keyOf(req: AdminRequest): string {
    const key = String(req.params.key ?? '');
    if (key.length === 0 || key.length > MAX_KEY_LENGTH + 20) this.fail(400, 'bad_request', 'errors.badKey', { max: MAX_KEY_LENGTH });
    return key;
  }

  private zoneOf(store: StoreRef): string {
    return store.timezone || hostZone();
  }

  /** Runs a change on a store and commits it before the answer (a deferred store too). */
  private async change_<T>(store: StoreRef, task: (s: Store) => Promise<T>): Promise<T> {
    if (!storeExists(store)) this.fail(404, 'not_found', 'errors.emptyStore', { id: store.id });
    return withStore(this.RED, store, async (s) => {
      const result = await task(s);
      await s.flush();
      return result;
    });
  }

  private refuseReadOnly(req: AdminRequest, store: StoreRef, namespace: string): void {
    const info = describeNamespace(namespace, store, this.ctx(req).nodes);
    if (info.readOnly) this.fail(409, 'read_only', 'errors.readOnly', { namespace });
  }

  private log(req: AdminRequest, key: string, substitutions: Substitutions): void {
    this.RED.log.info(this.text(`log.${key}`, { ...substitutions, user: req.user?.username ?? '-' }));
  }

  // ---- routes ----

  async stores(req: AdminRequest): Promise<Answer> {
    const stores = [];
    for (const ref of this.ctx(req).stores) {
      const shown = {
        id: ref.id,
        file: ref.file ?? null,
        default: ref.isDefault,
        timezone: ref.file ? this.zoneOf(ref) : null,
        configNodes: ref.configNodes,
        error: ref.error ?? null,
        exists: ref.file ? storeExists(ref) : false,
      };
      if (!ref.file || !shown.exists) {
        stores.push({ ...shown, driver: null, entries: 0, expired: 0, bytesUsed: 0, ...this.configured(ref), healthy: true, pendingWrites: 0 });
        continue;
      }
      try {
        stores.push(
          await withStore(this.RED, ref, async (s) => {
            const counts = await s.namespaceStats();
            return {
              ...shown,
              driver: s.driver,
              entries: counts.reduce((n, c) => n + c.entries - c.expired, 0),
              expired: counts.reduce((n, c) => n + c.expired, 0),
              bytesUsed: await s.bytesUsed(),
              sizeLimitBytes: s.sizeLimitBytes,
              evictionPolicy: s.evictionPolicy,
              durability: s.durability,
              healthy: s.healthy,
              pendingWrites: s.pendingWrites,
            };
          }),
        );
      } catch (error) {
        stores.push({ ...shown, ...this.configured(ref), driver: null, entries: null, expired: null, bytesUsed: null, error: messageOf(error) });
      }
    }
    return { json: { now: now(), stores } };
  }

  /** A store's settings as configured, for a store not open. */
  private configured(ref: StoreRef) {
    const limit = ref.options.sizeLimitMb ?? 100;
    return {
      sizeLimitBytes: Math.round(limit * 1024 * 1024),
      evictionPolicy: ref.options.evictionPolicy ?? 'least-recently-stored',
      durability: ref.options.durability ?? 'immediate',
    };
  }

  async namespaces(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const { nodes } = this.ctx(req);
    const stats = storeExists(ref) ? await withStore(this.RED, ref, (s) => s.namespaceStats()) : [];
    const byName = new Map(stats.map((s) => [s.namespace, s]));
    for (const name of usedNamespaces(ref, nodes))
      if (!byName.has(name)) byName.set(name, { namespace: name, entries: 0, expired: 0, bytes: 0, lastWrite: null });
    const namespaces = [...byName.values()]
      .map((s) => ({
        ...describeNamespace(s.namespace, ref, nodes),
        entries: s.entries - s.expired,
        expired: s.expired,
        bytes: s.bytes,
        lastWrite: s.lastWrite,
      }))
      .sort((a, b) => Number(a.orphaned) - Number(b.orphaned) || a.kind.localeCompare(b.kind) || a.label.localeCompare(b.label));
    return { json: { now: now(), store: ref.id, namespaces } };
  }

  async keys(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const namespace = this.namespaceOf(req);
    const query = req.query;
    const filter = optionalText(query.filter) ?? '';
    if (filter.length > MAX_FILTER) this.fail(400, 'bad_request', 'errors.badFilter', { max: MAX_FILTER });
    const match = optionalText(query.match) ?? 'prefix';
    if (match !== 'prefix' && match !== 'substring') this.fail(400, 'bad_request', 'errors.badMatch', { value: match });
    const sort = optionalText(query.sort) ?? 'key';
    if (sort !== 'key' && sort !== 'stored') this.fail(400, 'bad_request', 'errors.badSort', { value: sort });
    const limitText = optionalText(query.limit);
    const limit = limitText === undefined ? DEFAULT_PAGE : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_KEY_PAGE)
      this.fail(400, 'bad_request', 'errors.badLimit', { max: MAX_KEY_PAGE, value: limitText ?? '' });
    const cursorText = optionalText(query.cursor);
    const after = cursorText === undefined ? undefined : this.cursorFrom(cursorText, sort);
    const at = now();
    if (!storeExists(ref)) return { json: { now: at, namespace: req.params.namespace, total: 0, keys: [], next: null } };
    const page = await withStore(this.RED, ref, (s) => s.listKeys(namespace, { filter, match, sort, limit, after }));
    return {
      json: {
        now: at,
        namespace: req.params.namespace,
        total: page.total,
        keys: page.keys.map((k) => describeKey(k, at)),
        next: page.next ? cursorOf(page.next, sort) : null,
      },
    };
  }

  private cursorFrom(text: string, sort: string): { key: string; storedAt?: number } {
    try {
      const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
      if (Array.isArray(parsed) && parsed.length === 3 && parsed[0] === sort && typeof parsed[1] === 'string' && parsed[1] !== '') {
        if (sort === 'key') return { key: parsed[1] };
        if (typeof parsed[2] === 'number' && Number.isFinite(parsed[2])) return { key: parsed[1], storedAt: parsed[2] };
      }
    } catch {
      // answered below
    }
    return this.fail(400, 'bad_request', 'errors.badCursor');
  }

  async entry(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const namespace = this.namespaceOf(req);
    const key = this.keyOf(req);
    const found = storeExists(ref) ? await withStore(this.RED, ref, (s) => s.inspect(namespace, key)) : undefined;
    if (!found) this.fail(404, 'not_found', 'errors.notFound', { key });
    const { secrets, nodes } = this.ctx(req);
    // the value as the answer may show it: the secrets of the deployed ttl-fetch nodes taken out
    const value = scrubValue(found.value, secrets);
    const download = optionalText(req.query.download);
    if (download === '1' || download === 'true') return { download: encodeValue(value), name: key };
    const url = isStoredResponse(found.value) ? urlOfFetchKey(key, this.fetchNodes(nodes)) : undefined;
    const at = now();
    return { json: { now: at, namespace: req.params.namespace, entry: describeEntry(key, { ...found, value }, at, this.zoneOf(ref), url) } };
  }

  private fetchNodes(nodes: FlowConfig[]): { config: FetchNodeConfig; secret?: string }[] {
    return nodes.filter((n) => n.type === 'ttl-fetch').map((config) => ({ config: config as unknown as FetchNodeConfig, secret: this.secretOf(config.id) }));
  }

  /**
   * PUT an entry: `{"count": n}` sets a counter (as msg.count does: the count belongs to the current
   * period), `{"value": v, "ttl"?: s}` replaces a plain value (keeping its expiry unless `ttl` is given;
   * 0 = none). Cooldowns are reset with DELETE; cached HTTP answers can be deleted, not edited.
   */
  async change(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const namespace = this.namespaceOf(req);
    const key = this.keyOf(req);
    this.refuseReadOnly(req, ref, namespace);
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) this.fail(400, 'bad_request', 'errors.bodyNotObject');
    const fields = body as Record<string, unknown>;
    const kind = kindOfKey(key);
    if (kind === 'cooldown') this.fail(400, 'bad_request', 'errors.cooldownNoEdit', { key });
    let refused: string | undefined;
    let decide: (current: Entry | undefined) => UpdateDecision;
    let what: string;
    const setsCount = Object.hasOwn(fields, 'count');
    if (setsCount) {
      if (kind !== 'counter') this.fail(400, 'bad_request', 'errors.countOnlyCounter', { key });
      const count = fields.count;
      if (typeof count !== 'number' || !Number.isFinite(count)) this.fail(400, 'bad_request', 'errors.countNotNumber', { value: JSON.stringify(count) ?? '' });
      // as msg.count does; a count without a period start belongs to the period it was set in
      decide = () => ({ value: { count, periodStart: null }, evictable: false });
      what = `count ${count}`;
    } else if (Object.hasOwn(fields, 'value')) {
      if (kind === 'counter') this.fail(400, 'bad_request', 'errors.counterNeedsCount', { key });
      const value = fields.value;
      if (!isPlainJson(value)) this.fail(400, 'bad_request', 'errors.valueNotJson');
      const ttl = fields.ttl;
      if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0)) {
        this.fail(400, 'bad_request', 'errors.badTtl', { value: JSON.stringify(ttl) ?? '' });
      }
      decide = (current) => {
        if (!current) return undefined;
        if (isStoredResponse(current.value) || !isPlainJson(current.value)) {
          refused = isStoredResponse(current.value) ? 'errors.fetchNoEdit' : 'errors.notPlain';
          return undefined;
        }
        // no ttl given: the entry keeps the expiry it has
        const keep = current.expiresAt === null ? 0 : Math.max(0.001, (current.expiresAt - now()) / 1000);
        return { value, ttl: typeof ttl === 'number' ? ttl : keep, evictable: !isNodeState(key) };
      };
      what = 'value';
    } else {
      this.fail(400, 'bad_request', 'errors.bodyNotObject');
    }
    const result = await this.change_(ref, (s) => s.update(namespace, key, decide));
    if (refused) this.fail(400, 'bad_request', refused, { key });
    if (!setsCount && !result.previous) this.fail(404, 'not_found', 'errors.notFound', { key });
    this.log(req, 'changed', { key, what, namespace, file: ref.file ?? '' });
    return this.entry(req);
  }

  async deleteEntry(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const namespace = this.namespaceOf(req);
    const key = this.keyOf(req);
    this.refuseReadOnly(req, ref, namespace);
    const deleted = await this.change_(ref, (s) => (kindOfKey(key) === 'cooldown' ? resetCooldown(s, ref.file!, namespace, key) : s.delete(namespace, key)));
    if (deleted) this.log(req, kindOfKey(key) === 'cooldown' ? 'reset' : 'deleted', { key, namespace, file: ref.file ?? '' });
    return { json: { now: now(), deleted } };
  }

  async clear(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    const namespace = this.namespaceOf(req);
    this.refuseReadOnly(req, ref, namespace);
    if (!storeExists(ref)) return { json: { now: now(), removed: 0 } };
    const removed = await this.change_(ref, async (s) => {
      const [stats] = await s.namespaceStats(namespace);
      await s.clear(namespace);
      return stats ? stats.entries : 0;
    });
    this.log(req, 'cleared', { namespace, removed, file: ref.file ?? '' });
    return { json: { now: now(), removed } };
  }

  async purge(req: AdminRequest): Promise<Answer> {
    const ref = this.store(req);
    if (!storeExists(ref)) return { json: { now: now(), removed: 0 } };
    const removed = await this.change_(ref, (s) => s.sweep());
    this.log(req, 'purged', { removed, file: ref.file ?? '' });
    return { json: { now: now(), removed } };
  }
}

/**
 * Resets a cooldown as msg.reset does: a running gate on the same keys resets it, so a summary held
 * back in it is sent (by the gate that held it, else by one that sends summaries). With no gate
 * running the cooldown goes and what was held back stays in the store for the next start.
 */
async function resetCooldown(store: Store, file: string, namespace: string, key: string): Promise<boolean> {
  let heldBy: string | undefined;
  await store.update(namespace, key, (current) => {
    heldBy = current ? readState(current.value).held?.gate : undefined;
    return undefined;
  });
  const gate = gateFor(file, namespace, heldBy);
  if (gate) return gate.reset(key.slice(COOLDOWN_PREFIX.length));
  let existed = false;
  await store.update(namespace, key, (current) => {
    existed = current !== undefined;
    const held = current ? readState(current.value).held : undefined;
    if (!current) return undefined;
    // the reset ends the window: the summary is due now
    return held ? { value: { held: { ...held, due: Math.min(held.due, now()) } }, evictable: false } : { delete: true };
  });
  return existed;
}

function optionalText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : String(Array.isArray(value) ? value[0] : value);
}

function cursorOf(next: { key: string; storedAt: number }, sort: string): string {
  return Buffer.from(JSON.stringify([sort, next.key, next.storedAt]), 'utf8').toString('base64url');
}
