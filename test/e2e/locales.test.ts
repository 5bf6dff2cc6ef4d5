// Static check of the editor files: every i18n key an editor html uses exists in its en-US locale, and each node has its files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ALL_TYPES, root } from './support';

const MODULE = 'node-red-contrib-flow-cache';

/** The i18n keys an editor html asks for: data-i18n attributes and translation calls in its script (a key ending in "." is a prefix completed at run time). */
export function keysUsed(type: string, html: string): string[] {
  const keys = new Set<string>();
  for (const match of html.matchAll(/data-i18n="([^"]+)"/g)) {
    for (const part of match[1].split(';')) keys.add(part.replace(/^\[[^\]]*\]/, '').trim());
  }
  const escaped = type.replace(/[-.]/g, '\\$&');
  // this._('type.x'), node._(...), RED._('module/type:type.x'): the first argument of a translation call.
  for (const match of html.matchAll(new RegExp(`_\\(\\s*['"](?:${MODULE}/${escaped}:)?(${escaped}\\.[A-Za-z0-9_.-]*)['"]`, 'g'))) keys.add(match[1]);
  // A local helper that prefixes its argument with "<module>/<type>:<type>." (ttl-fetch's `text('errors.url')`).
  const helper = new RegExp(`function (\\w+)\\(\\w+\\)\\s*\\{\\s*return RED\\._\\('${MODULE}/${escaped}:${escaped}\\.' \\+ \\w+\\);`).exec(html);
  if (helper) for (const match of html.matchAll(new RegExp(`\\b${helper[1]}\\('([^']+)'\\)`, 'g'))) keys.add(`${type}.${match[1]}`);
  return [...keys].filter((key) => key !== '');
}

/** Whether `key` (or, for a prefix ending in ".", an object with entries) exists in the locale catalogue. */
function present(catalogue: Record<string, any>, key: string): boolean {
  const prefix = key.endsWith('.');
  let at: any = catalogue;
  for (const part of (prefix ? key.slice(0, -1) : key).split('.')) {
    if (at === null || typeof at !== 'object' || !(part in at)) return false;
    at = at[part];
  }
  return prefix ? at !== null && typeof at === 'object' && Object.keys(at).length > 0 : typeof at === 'string' && at.trim() !== '';
}

describe('editor files and locales', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

  test('package.json registers exactly the six node types', () => {
    assert.deepEqual(Object.keys(pkg['node-red'].nodes).sort(), [...ALL_TYPES].sort());
  });

  for (const type of ALL_TYPES) {
    test(`${type}: every i18n key its editor uses is in locales/en-US/${type}.json`, () => {
      const html = fs.readFileSync(path.join(root, 'nodes', `${type}.html`), 'utf8');
      const catalogue = JSON.parse(fs.readFileSync(path.join(root, 'locales', 'en-US', `${type}.json`), 'utf8'));
      assert.deepEqual(Object.keys(catalogue), [type], `${type}.json has one top-level entry named after the type`);
      const keys = keysUsed(type, html);
      assert.ok(keys.length >= 5, `${type}.html uses i18n keys (${keys.length} found)`);
      const missing = keys.filter((key) => !present(catalogue, key));
      assert.deepEqual(missing, [], `${type}: keys used in nodes/${type}.html but missing from locales/en-US/${type}.json`);
      // Keys of other nodes would resolve in another catalogue only by luck.
      const foreign = [...html.matchAll(/data-i18n="(?:\[[^\]]*\])?([a-z-]+)\./g)].map((m) => m[1]).filter((t) => t !== type);
      assert.deepEqual(foreign, [], `${type}.html uses only its own keys`);
    });

    test(`${type}: has help, an editor script that registers it, and (for a flow node) an icon`, () => {
      const html = fs.readFileSync(path.join(root, 'nodes', `${type}.html`), 'utf8');
      assert.match(html, new RegExp(`data-template-name="${type}"`));
      assert.match(html, new RegExp(`RED\\.nodes\\.registerType\\('${type}'`));
      const help = fs.readFileSync(path.join(root, 'locales', 'en-US', `${type}.html`), 'utf8');
      assert.match(help, new RegExp(`data-help-name="${type}"`));
      assert.match(help, /<p>[\s\S]+?<\/p>/, 'help starts with a summary paragraph');
      assert.match(help, /<h3>Details<\/h3>/);
      if (type === 'cache-store') return;
      assert.match(help, /<h3>Inputs<\/h3>/);
      assert.match(help, /<h3>Outputs<\/h3>/);
      assert.match(html, new RegExp(`icon: '${type}\\.svg'`));
      const svg = fs.readFileSync(path.join(root, 'icons', `${type}.svg`), 'utf8');
      assert.match(svg, /<svg[^>]*viewBox="0 0 40 60"/, `${type}.svg has the core icons' viewBox`);
    });
  }

  test('the key finder sees attribute, script and helper keys', () => {
    const html = `<span data-i18n="x-y.label.a"></span><input data-i18n="[placeholder]x-y.placeholder.b;[title]x-y.label.c">
      <script>this._('x-y.short.' + u); this._('x-y.label.d');
      function text(id) { return RED._('${MODULE}/x-y:x-y.' + id); } text('errors.e');</script>`;
    assert.deepEqual(keysUsed('x-y', html).sort(), ['x-y.', 'x-y.errors.e', 'x-y.label.a', 'x-y.label.c', 'x-y.label.d', 'x-y.placeholder.b', 'x-y.short.'].sort());
  });
});
