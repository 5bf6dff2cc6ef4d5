// Texts a user reads at runtime (statuses, errors, warnings) come from the package's catalogues
// (locales/<lang>/<node>.json), through Node-RED's RED._ in the runtime's language.
import fs from 'node:fs';
import path from 'node:path';
import { CacheError } from '../lib/errors';
import type { NodeAPI } from './api';

export const MODULE = 'node-red-contrib-flow-cache';
export type Catalog = 'cache-get' | 'cache-set' | 'cache-store' | 'cooldown-gate' | 'counter' | 'ttl-fetch';
export type Substitutions = Record<string, string | number | boolean | null | undefined>;

/** A `__name__` placeholder, as Node-RED's i18n writes them. */
const PLACEHOLDER = /__([A-Za-z0-9_]+?)__/g;
/** Per runtime: the translated texts already asked for, placeholders kept. */
const templates = new WeakMap<NodeAPI, Map<string, string>>();

const english = new Map<Catalog, Record<string, unknown>>();

/** The English catalogue of a node, read from the package itself. */
function englishCatalog(catalog: Catalog): Record<string, unknown> {
  let found = english.get(catalog);
  if (!found) {
    // dist/nodes/red/i18n.js -> dist/nodes/locales; nodes/red/i18n.ts (ts-node) -> locales at the root
    const candidates = [path.join(__dirname, '..', 'locales'), path.join(__dirname, '..', '..', 'locales')];
    const dir = candidates.find((d) => fs.existsSync(path.join(d, 'en-US', `${catalog}.json`)));
    found = dir ? (JSON.parse(fs.readFileSync(path.join(dir, 'en-US', `${catalog}.json`), 'utf8')) as Record<string, unknown>) : {};
    english.set(catalog, found);
  }
  return found;
}

function lookup(tree: Record<string, unknown>, dotted: string): string | undefined {
  let at: unknown = tree;
  for (const part of dotted.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return typeof at === 'string' ? at : undefined;
}

/** Fills `__name__` placeholders, as Node-RED's i18n does. */
export function fill(template: string, substitutions: Substitutions = {}): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => (Object.hasOwn(substitutions, name) ? String(substitutions[name] ?? '') : whole));
}

/**
 * The text for `key` of a node's catalogue (`status.hit` of `cache-get` is `cache-get.status.hit` in
 * locales/<lang>/cache-get.json). Node-RED's own translation is used where the runtime has the
 * catalogue; where it has none (a test harness, or the key untranslated) the English text is used. Without `RED`, the runtime bound last is used.
 */
export function text(RED: NodeAPI | undefined, catalog: Catalog, key: string, substitutions?: Substitutions): string {
  const full = `${catalog}.${key}`;
  const english = lookup(englishCatalog(catalog), full);
  const red = RED ?? runtime;
  const translated = red && typeof red._ === 'function' ? translatedTemplate(red, catalog, full, english) : undefined;
  const template = translated ?? english;
  return template === undefined ? full : fill(template, substitutions);
}

/**
 * The runtime's translation of a text with its placeholders kept, asked of Node-RED once per text and
 * runtime (statuses change with every message: i18next's lookup and interpolation cost more than the
 * node's own work). The placeholders of the English text are passed as markers and turned back into
 * `__name__`, so the translation can put them in any order. Undefined while the runtime has no
 * translation (its catalogue not loaded yet, or the key untranslated): asked again next time.
 */
function translatedTemplate(red: NodeAPI, catalog: Catalog, full: string, english: string | undefined): string | undefined {
  let known = templates.get(red);
  if (!known) {
    known = new Map();
    templates.set(red, known);
  }
  const cached = known.get(full);
  if (cached !== undefined) return cached;
  const id = `${MODULE}/${catalog}:${full}`;
  const markers: Record<string, string> = {};
  for (const match of (english ?? '').matchAll(PLACEHOLDER)) markers[match[1]] = `⟦${match[1]}⟧`;
  try {
    const translated = red._(id, markers);
    if (typeof translated !== 'string' || translated === id || translated === full || translated === '') return undefined;
    const template = translated.replace(/⟦([A-Za-z0-9_]+?)⟧/g, '__$1__');
    known.set(full, template);
    return template;
  } catch {
    return undefined;
  }
}

/** A text bound to one node's catalogue. */
export function textsOf(RED: NodeAPI | undefined, catalog: Catalog) {
  return (key: string, substitutions?: Substitutions): string => text(RED, catalog, key, substitutions);
}

let runtime: NodeAPI | undefined;

/** Remembers the runtime whose language the shared texts below use (every node module calls it as it loads). */
export function bindRuntime(RED: NodeAPI): void {
  runtime = RED;
}

/** A text shared by every node (key checks, store statuses), from the `runtime` section of the cache-store catalogue. */
export function shared(key: string, substitutions?: Substitutions): string {
  return text(runtime, 'cache-store', `runtime.${key}`, substitutions);
}

/** An error of the store, in the user's language: its detail looked up under `store` of the cache-store catalogue. */
export function localize<E>(error: E): E {
  if (error instanceof CacheError && error.detail) {
    const key = `store.${error.detail.text}`;
    const translated = text(runtime, 'cache-store', key, error.detail.values);
    if (translated !== `cache-store.${key}`) error.message = translated;
  }
  return error;
}
