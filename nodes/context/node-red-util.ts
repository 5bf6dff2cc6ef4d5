/**
 * The property-path functions and the log of the Node-RED that runs this context store: the same
 * `@node-red/util` its built-in `memory` and `localfilesystem` stores use, so a nested key such as
 * `a.b[0].c` (or `a["x y"]`, `a[msg.k]`) means exactly what it means there.
 *
 * The package does not depend on `@node-red/util`: Node-RED brings it. It is found where Node-RED
 * already loaded it, else next to the script that started the process (Node-RED's `red.js`, or an
 * application that embeds Node-RED), else from this package's own dependencies (development).
 */
import { createRequire } from 'node:module';
import path from 'node:path';

/** A step of a property path as Node-RED splits it: a property name or an array index. */
export type PathPart = string | number;

export interface PropertyUtil {
  normalisePropertyExpression(expression: string, msg?: object): PathPart[];
  getObjectProperty(target: object, expression: string): unknown;
  setObjectProperty(target: object, expression: string, value: unknown, createMissing?: boolean): boolean;
}

/** Where the context store reports what it cannot hand to a caller. */
export interface ContextLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface NodeRedUtilModule {
  util: PropertyUtil;
  log: ContextLogger;
}

const UTIL_INDEX = /[\\/]@node-red[\\/]util[\\/]index\.js$/;

function usable(candidate: unknown): candidate is NodeRedUtilModule {
  const mod = candidate as Partial<NodeRedUtilModule> | undefined;
  return (
    typeof mod?.util?.setObjectProperty === 'function' && typeof mod.util.normalisePropertyExpression === 'function' && typeof mod.log?.warn === 'function'
  );
}

/** Loads `@node-red/util` as a module next to `from` would, or returns undefined. */
function loadFrom(from: string): NodeRedUtilModule | undefined {
  const load = createRequire(from);
  const names = ['@node-red/util'];
  try {
    // an application that embeds Node-RED: its util sits inside the node-red package's own tree
    names.push(path.join(path.dirname(load.resolve('node-red/package.json')), 'node_modules', '@node-red', 'util'));
  } catch {
    // no node-red package reachable from there
  }
  for (const name of names) {
    try {
      const mod: unknown = load(name);
      if (usable(mod)) return mod;
    } catch {
      // not reachable from there
    }
  }
  return undefined;
}

/** The `@node-red/util` of the running Node-RED; throws a readable error where there is none. */
export function nodeRedUtil(): NodeRedUtilModule {
  for (const id of Object.keys(require.cache)) {
    const loaded = require.cache[id];
    if (UTIL_INDEX.test(id) && loaded && usable(loaded.exports)) return loaded.exports;
  }
  const main = require.main?.filename;
  const found = (main && loadFrom(main)) || loadFrom(__filename);
  if (found) return found;
  throw new Error(
    'node-red-contrib-flow-cache/context is a Node-RED context store: it runs inside Node-RED (contextStorage in settings.js), ' +
      'and no Node-RED (@node-red/util) could be found from this process',
  );
}
