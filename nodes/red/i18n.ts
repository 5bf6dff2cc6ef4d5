// Texts a user reads at runtime (statuses, errors, warnings) come from the package's catalogues
// (locales/<lang>/<node>.json), through Node-RED's RED._ in the runtime's language.
import fs from 'node:fs';
import path from 'node:path';
import type { NodeAPI } from './api';

export const MODULE = 'node-red-contrib-flow-cache';
export type Catalog = 'cache-get' | 'cache-set' | 'cache-store' | 'cooldown-gate' | 'counter' | 'ttl-fetch';
export type Substitutions = Record<string, string | number | boolean | null | undefined>;

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
  return template.replace(/__([A-Za-z0-9_]+?)__/g, (whole, name: string) =>
    Object.hasOwn(substitutions, name) ? String(substitutions[name] ?? '') : whole,
  );
}

/**
 * The text for `key` of a node's catalogue (`status.hit` of `cache-get` is `cache-get.status.hit` in
 * locales/<lang>/cache-get.json). Node-RED's own translation is used where the runtime has the
 * catalogue; where it has none (a test harness, or the key untranslated) the English text is used.
 */
export function text(RED: NodeAPI | undefined, catalog: Catalog, key: string, substitutions?: Substitutions): string {
  const full = `${catalog}.${key}`;
  const id = `${MODULE}/${catalog}:${full}`;
  if (RED && typeof RED._ === 'function') {
    try {
      const translated = RED._(id, substitutions);
      if (typeof translated === 'string' && translated !== id && translated !== full && translated !== '') return translated;
    } catch {
      // fall through to the English text
    }
  }
  const template = lookup(englishCatalog(catalog), full);
  return template === undefined ? full : fill(template, substitutions);
}

/** A text bound to one node's catalogue. */
export function textsOf(RED: NodeAPI | undefined, catalog: Catalog) {
  return (key: string, substitutions?: Substitutions): string => text(RED, catalog, key, substitutions);
}
