/**
 * A simulated Home Assistant: the part of Home Assistant's websocket API (and a little of its REST API)
 * that node-red-contrib-home-assistant-websocket 0.80 uses, on 127.0.0.1. The test drives it: states,
 * events, refused actions, dropped connections, a restart, a first connection accepted only later.
 * Every `call_service` is recorded.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';

export const HA_VERSION = '2025.6.1';
export const TOKEN = 'simulated-long-lived-access-token';

export interface HaState {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
  last_changed: string;
  last_updated: string;
  context: { id: string; parent_id: null; user_id: null };
}

/** One call_service the server received, and what it answered. */
export interface ServiceCall {
  domain: string;
  service: string;
  data: Record<string, unknown>;
  target: Record<string, unknown>;
  /** When it arrived (real time, ms). */
  at: number;
  /** The error sent back, if the call was refused. */
  refused?: string;
}

/** A refusal rule: which calls to refuse, with what message (Home Assistant's own wording by default). */
interface Refusal {
  action: string;
  message: string;
  /** How many more calls to refuse (Infinity: until `accept`). */
  left: number;
}

interface Subscription {
  kind: 'events' | 'entities';
  eventType?: string;
}

interface Client {
  socket: WebSocket;
  authed: boolean;
  subscriptions: Map<number, Subscription>;
}

type Json = Record<string, unknown>;

/** The domains and actions the simulated Home Assistant offers (get_services). */
const SERVICES: Record<string, Record<string, Json>> = {
  notify: {
    mobile_app_your_phone: { name: 'Send a notification via mobile_app_your_phone', fields: { message: {}, title: {}, data: {} } },
    twilio_sms: { name: 'Send a notification via twilio_sms', fields: { message: {}, target: {} } },
  },
  input_number: {
    set_value: { name: 'Set', fields: { value: {} }, target: { entity: [{ domain: ['input_number'] }] } },
  },
  light: { turn_on: { name: 'Turn on', fields: { brightness_pct: {} }, target: { entity: [{ domain: ['light'] }] } } },
  homeassistant: { restart: { name: 'Restart', fields: {} } },
};

function now(): string {
  return new Date().toISOString();
}

let contextCount = 0;
function context(): HaState['context'] {
  contextCount++;
  return { id: `01SIMULATED${String(contextCount).padStart(15, '0')}`, parent_id: null, user_id: null };
}

export class HaServer {
  readonly calls: ServiceCall[] = [];
  /** Every command type received, in order (what the nodes asked for). */
  readonly commands: string[] = [];
  /** How many websocket connections completed the auth phase. */
  connections = 0;
  /** Home Assistant's core state: RUNNING, or NOT_RUNNING while it starts. */
  running = true;
  private states = new Map<string, HaState>();
  private clients = new Set<Client>();
  private refusals: Refusal[] = [];
  /** Actions whose next call drops the connection before Home Assistant answers. */
  private drops = new Set<string>();
  private http = http.createServer((req, res) => this.onHttp(req, res));
  // ws 7 (what node_modules holds at the top) names the server class WebSocket.Server
  private wss = new WebSocket.Server({ noServer: true });
  private listening = false;
  port = 0;

  private constructor() {
    this.http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/api/websocket') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
  }

  /**
   * A server on a free port of 127.0.0.1. With `listen: false` the port is chosen but nothing accepts
   * connections until `listen()`: a Home Assistant that is not up yet when Node-RED starts.
   */
  static async start(options: { listen?: boolean } = {}): Promise<HaServer> {
    const server = new HaServer();
    await server.bind();
    if (options.listen === false) await server.unbind();
    return server;
  }

  /** The URL for the server config node's host. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.port, '127.0.0.1', () => {
        this.http.off('error', reject);
        this.port = (this.http.address() as AddressInfo).port;
        this.listening = true;
        resolve();
      });
    });
  }

  private unbind(): Promise<void> {
    this.listening = false;
    for (const client of this.clients) client.socket.terminate();
    this.clients.clear();
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }

  /** Starts accepting connections (after `start({listen: false})` or `stopListening()`). */
  async listen(): Promise<void> {
    if (!this.listening) await this.bind();
  }

  /** Stops accepting connections and drops the open ones: Home Assistant down. */
  async stopListening(): Promise<void> {
    if (this.listening) await this.unbind();
  }

  async stop(): Promise<void> {
    await this.stopListening();
    this.wss.close();
  }

  // ---- states and events ----

  state(entityId: string): HaState | undefined {
    return this.states.get(entityId);
  }

  /** Sets an entity's state (and attributes, merged) and tells every subscribed client: a state_changed event. */
  setState(entityId: string, state: string, attributes: Record<string, unknown> = {}): void {
    const old = this.states.get(entityId);
    const at = now();
    const changed = !old || old.state !== state;
    const next: HaState = {
      entity_id: entityId,
      state,
      attributes: { ...(old?.attributes ?? { friendly_name: entityId }), ...attributes },
      last_changed: changed ? at : (old?.last_changed ?? at),
      last_updated: at,
      context: context(),
    };
    this.states.set(entityId, next);
    for (const client of this.authedClients()) {
      for (const [id, sub] of client.subscriptions) {
        if (sub.kind === 'entities') {
          this.send(client, {
            id,
            type: 'event',
            event: { c: { [entityId]: { '+': { s: state, a: next.attributes, lc: Date.parse(next.last_changed) / 1000, c: next.context.id } } } },
          });
        }
      }
    }
    this.fire('state_changed', { entity_id: entityId, old_state: old ?? null, new_state: next });
  }

  /** Fires an event of any type to the clients subscribed to it (or to all events). */
  fire(eventType: string, data: Json = {}): void {
    const event = { event_type: eventType, data, origin: 'LOCAL', time_fired: now(), context: context() };
    for (const client of this.authedClients()) {
      for (const [id, sub] of client.subscriptions) {
        if (sub.kind === 'events' && (sub.eventType === undefined || sub.eventType === eventType)) this.send(client, { id, type: 'event', event });
      }
    }
  }

  // ---- actions ----

  /**
   * Refuses calls of `action` ("notify.mobile_app_your_phone"), `times` times (default: until `accept`),
   * with Home Assistant's message for an action it does not have, or `message`.
   */
  refuse(action: string, options: { times?: number; message?: string } = {}): void {
    this.refusals.push({ action, message: options.message ?? `Action ${action} not found.`, left: options.times ?? Number.POSITIVE_INFINITY });
  }

  /** The next call of `action` arrives, and the connection drops before any answer (the clients reconnect at once). */
  dropOnNextCall(action: string): void {
    this.drops.add(action);
  }

  /** Accepts `action` again (or every action). */
  accept(action?: string): void {
    this.refusals = action === undefined ? [] : this.refusals.filter((r) => r.action !== action);
  }

  /** The calls of one action that Home Assistant accepted. */
  delivered(action: string): ServiceCall[] {
    return this.calls.filter((c) => `${c.domain}.${c.service}` === action && c.refused === undefined);
  }

  // ---- connections ----

  /** Drops every open connection (the clients reconnect at once: the server still accepts). */
  dropConnections(): void {
    for (const client of this.clients) client.socket.terminate();
    this.clients.clear();
  }

  /**
   * Home Assistant restarts: every connection drops; it accepts connections again at once but is
   * starting (core state NOT_RUNNING) and every entity is `unavailable` until `finishStart`.
   */
  beginRestart(): void {
    this.running = false;
    this.dropConnections();
    const at = now();
    for (const [id, s] of this.states) this.states.set(id, { ...s, state: 'unavailable', last_changed: at, last_updated: at, context: context() });
  }

  /**
   * The restart ends: homeassistant_start, then RUNNING (core_config_updated makes the clients read
   * the config again) and homeassistant_started. States come back only through `setState` afterwards.
   */
  finishStart(): void {
    this.fire('homeassistant_start');
    this.running = true;
    this.fire('core_config_updated');
    this.fire('homeassistant_started');
  }

  private *authedClients(): Iterable<Client> {
    for (const client of this.clients) if (client.authed) yield client;
  }

  private send(client: Client, msg: Json): void {
    if (client.socket.readyState === client.socket.OPEN) client.socket.send(JSON.stringify(msg));
  }

  private onConnection(socket: WebSocket): void {
    const client: Client = { socket, authed: false, subscriptions: new Map() };
    this.clients.add(client);
    socket.on('close', () => this.clients.delete(client));
    socket.on('error', () => this.clients.delete(client));
    socket.on('message', (raw) => {
      let msg: Json;
      try {
        msg = JSON.parse(String(raw)) as Json;
      } catch {
        socket.close(1003, 'not JSON');
        return;
      }
      if (!client.authed) this.onAuth(client, msg);
      else this.onCommand(client, msg);
    });
    this.send(client, { type: 'auth_required', ha_version: HA_VERSION });
  }

  private onAuth(client: Client, msg: Json): void {
    if (msg.type !== 'auth') {
      client.socket.close();
      return;
    }
    if (msg.access_token !== TOKEN) {
      this.send(client, { type: 'auth_invalid', message: 'Invalid access token or password' });
      client.socket.close();
      return;
    }
    client.authed = true;
    this.connections++;
    this.send(client, { type: 'auth_ok', ha_version: HA_VERSION });
  }

  private result(client: Client, id: unknown, result: unknown): void {
    this.send(client, { id, type: 'result', success: true, result });
  }

  private error(client: Client, id: unknown, code: string, message: string): void {
    this.send(client, { id, type: 'result', success: false, error: { code, message } });
  }

  private config(): Json {
    return {
      latitude: 52.52,
      longitude: 13.41,
      elevation: 34,
      unit_system: { length: 'km', mass: 'g', temperature: '°C', volume: 'L' },
      location_name: 'Simulated Home',
      time_zone: 'Europe/Berlin',
      components: ['notify', 'input_number', 'binary_sensor', 'sensor', 'person', 'mobile_app'],
      config_dir: '/config',
      allowlist_external_dirs: [],
      allowlist_external_urls: [],
      version: HA_VERSION,
      config_source: 'storage',
      recovery_mode: false,
      safe_mode: false,
      state: this.running ? 'RUNNING' : 'NOT_RUNNING',
      external_url: null,
      internal_url: null,
      currency: 'EUR',
      country: 'DE',
      language: 'en',
    };
  }

  private onCommand(client: Client, msg: Json): void {
    const id = msg.id;
    const type = String(msg.type);
    this.commands.push(type);
    switch (type) {
      case 'supported_features':
        this.result(client, id, null);
        return;
      case 'ping':
        this.send(client, { id, type: 'pong' });
        return;
      case 'auth/current_user':
        this.result(client, id, { id: 'simulated-user', name: 'Node-RED', is_owner: true, is_admin: true, credentials: [], mfa_modules: [] });
        return;
      case 'get_config':
        this.result(client, id, this.config());
        return;
      case 'get_services':
        this.result(client, id, SERVICES);
        return;
      case 'get_states':
        this.result(client, id, [...this.states.values()]);
        return;
      case 'subscribe_events':
        client.subscriptions.set(Number(id), { kind: 'events', eventType: typeof msg.event_type === 'string' ? msg.event_type : undefined });
        this.result(client, id, null);
        return;
      case 'subscribe_entities': {
        client.subscriptions.set(Number(id), { kind: 'entities' });
        this.result(client, id, null);
        const all: Json = {};
        for (const s of this.states.values()) all[s.entity_id] = { s: s.state, a: s.attributes, c: s.context.id, lc: Date.parse(s.last_changed) / 1000 };
        this.send(client, { id, type: 'event', event: { a: all } });
        return;
      }
      case 'unsubscribe_events':
        client.subscriptions.delete(Number(msg.subscription));
        this.result(client, id, null);
        return;
      case 'config/entity_registry/list':
      case 'config/device_registry/list':
      case 'config/area_registry/list':
      case 'config/floor_registry/list':
      case 'config/label_registry/list':
        this.result(client, id, []);
        return;
      case 'fire_event':
        this.fire(String(msg.event_type), (msg.event_data as Json) ?? {});
        this.result(client, id, { context: context() });
        return;
      case 'call_service':
        this.onCallService(client, msg);
        return;
      default:
        this.error(client, id, 'unknown_command', 'Unknown command.');
        return;
    }
  }

  private onCallService(client: Client, msg: Json): void {
    const domain = String(msg.domain);
    const service = String(msg.service);
    const action = `${domain}.${service}`;
    const call: ServiceCall = {
      domain,
      service,
      data: (msg.service_data as Json) ?? {},
      target: (msg.target as Json) ?? {},
      at: Date.now(),
    };
    this.calls.push(call);
    if (this.drops.delete(action)) {
      call.refused = 'connection lost';
      this.dropConnections();
      return;
    }
    const refusal = this.refusals.find((r) => r.action === action && r.left > 0);
    if (refusal) {
      refusal.left--;
      call.refused = refusal.message;
      this.error(client, msg.id, 'service_not_found', refusal.message);
      return;
    }
    if (!SERVICES[domain]?.[service]) {
      call.refused = `Action ${action} not found.`;
      this.error(client, msg.id, 'service_not_found', call.refused);
      return;
    }
    if (action === 'input_number.set_value') {
      const refused = this.setInputNumber(call);
      if (refused) {
        call.refused = refused;
        this.error(client, msg.id, 'service_validation_error', refused);
        return;
      }
    }
    this.result(client, msg.id, { context: context(), response: null });
  }

  /** input_number.set_value as Home Assistant does it: the entity must exist and the value lie in its range. */
  private setInputNumber(call: ServiceCall): string | undefined {
    const ids = [call.target.entity_id ?? call.data.entity_id].flat().filter((id): id is string => typeof id === 'string');
    const value = Number(call.data.value);
    for (const id of ids) {
      const entity = this.states.get(id);
      if (!entity) return `Referenced entities ${id} are missing or not currently available`;
      const min = Number(entity.attributes.min ?? 0);
      const max = Number(entity.attributes.max ?? 100);
      if (!Number.isFinite(value)) return `expected float for dictionary value @ data['value']`;
      if (value < min || value > max) return `Invalid value for ${id}: ${value} (range ${min} - ${max})`;
    }
    for (const id of ids) this.setState(id, String(value));
    return undefined;
  }

  /** Home Assistant's REST API: /api/ answers; the nodes used here need nothing else of it. */
  private onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('401: Unauthorized');
      return;
    }
    if (req.url === '/api/' || req.url === '/api') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'API running.' }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: 'Not found' }));
  }
}
