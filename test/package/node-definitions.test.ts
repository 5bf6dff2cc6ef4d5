// Each node's editor definition as Node-RED's Flow Library reads it: the library parses every node's
// .html and takes category, color, icon, inputs, outputs, defaults and credentials from the object
// literal given to RED.nodes.registerType (anything else it cannot read, and a node it cannot read has
// no palette entry, no example and no scorecard line on flows.nodered.org). Parsed here with the
// TypeScript compiler, as a syntax tree, not by pattern.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const root = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const NODES: Record<string, string> = pkg['node-red'].nodes;

interface Definition {
  type: string;
  /** The literal's properties by name, with their initializer. */
  properties: Map<string, ts.Expression>;
}

/** Every RED.nodes.registerType call in a node's .html, its second argument required to be an object literal. */
function definitions(file: string): Definition[] {
  const html = fs.readFileSync(path.join(root, file), 'utf8');
  const found: Definition[] = [];
  for (const match of html.matchAll(/<script[^>]*type=['"]text\/javascript['"][^>]*>([\s\S]*?)<\/script>/g)) {
    const source = ts.createSourceFile(file, match[1], ts.ScriptTarget.ES2020, true, ts.ScriptKind.JS);
    const visit = (n: ts.Node) => {
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.name.text === 'registerType') {
        const [type, definition] = n.arguments;
        assert.ok(type && ts.isStringLiteral(type), `${file}: registerType's first argument is not a string literal`);
        assert.ok(
          definition && ts.isObjectLiteralExpression(definition),
          `${file}: registerType('${type.text}', ...) is given ${definition ? ts.SyntaxKind[definition.kind] : 'nothing'}, not an object literal`,
        );
        const properties = new Map<string, ts.Expression>();
        for (const p of definition.properties) {
          if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) properties.set(p.name.text, p.initializer);
          else if (ts.isMethodDeclaration(p) && ts.isIdentifier(p.name)) properties.set(p.name.text, p as unknown as ts.Expression);
          else assert.fail(`${file}: registerType('${type.text}') has a property the Flow Library cannot read: ${p.getText()}`);
        }
        found.push({ type: type.text, properties });
      }
      ts.forEachChild(n, visit);
    };
    visit(source);
  }
  return found;
}

const literal = (e: ts.Expression | undefined) => e !== undefined && (ts.isStringLiteral(e) || ts.isNumericLiteral(e));
const literalText = (e: ts.Expression | undefined) => (e && (ts.isStringLiteral(e) || ts.isNumericLiteral(e)) ? e.text : undefined);

describe('node definitions as the Flow Library reads them', () => {
  for (const [type, runtime] of Object.entries(NODES)) {
    const html = path.join('nodes', `${path.basename(runtime, '.js')}.html`);

    test(`${type}: registerType('${type}', { ... }) in ${html}, its parts written out`, () => {
      const defs = definitions(html);
      assert.deepEqual(
        defs.map((d) => d.type),
        [type],
      );
      const { properties } = defs[0];
      const category = literalText(properties.get('category'));
      assert.ok(category, `${type}: no category as a string literal`);
      const defaults = properties.get('defaults');
      assert.ok(defaults && ts.isObjectLiteralExpression(defaults), `${type}: defaults are not an object literal`);
      const names = defaults.properties.map((p) => (p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? p.name.text : '?'));
      assert.ok(!names.includes('?'), `${type}: a default whose name is not written out`);
      assert.equal(new Set(names).size, names.length, `${type}: a default named twice`);
      assert.ok(names.includes('name'), `${type}: no name default`);
      const credentials = properties.get('credentials');
      if (credentials) assert.ok(ts.isObjectLiteralExpression(credentials), `${type}: credentials are not an object literal`);
      assert.ok(properties.has('label'), `${type}: no label`);
      if (category === 'config') return;
      for (const part of ['color', 'icon', 'inputs', 'outputs']) assert.ok(literal(properties.get(part)), `${type}: ${part} is not a literal`);
      const icon = literalText(properties.get('icon')) as string;
      assert.ok(fs.existsSync(path.join(root, 'icons', icon)), `${type}: icon ${icon} is not in icons/`);
      for (const shared of ['store', 'key', 'keyType']) assert.ok(names.includes(shared), `${type}: no ${shared} default`);
      assert.ok(properties.has('paletteLabel') && properties.has('oneditprepare'), `${type}: no paletteLabel or oneditprepare`);
    });
  }

  test('the flow nodes share one category and one colour', () => {
    const flow = Object.entries(NODES)
      .map(([, runtime]) => definitions(path.join('nodes', `${path.basename(runtime, '.js')}.html`))[0])
      .filter((d) => literalText(d.properties.get('category')) !== 'config');
    assert.equal(flow.length, Object.keys(NODES).length - 1);
    assert.equal(new Set(flow.map((d) => literalText(d.properties.get('category')))).size, 1);
    assert.equal(new Set(flow.map((d) => literalText(d.properties.get('color')))).size, 1);
  });
});
