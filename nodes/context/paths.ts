// What a write through a property path changes, so a write that cannot be stored can be taken back.
import type { PathPart } from './node-red-util';

type Container = Record<string | number, unknown>;

const nothing = (): void => undefined;

/**
 * Undoes what Node-RED's `setObjectProperty(root, path, value)` is about to change: it walks the
 * path as that function does and remembers the one slot the write creates or replaces (the first
 * missing step, else the last one). An array on the way is remembered whole, since a write or a
 * delete (splice) can shift or extend it.
 */
export function undoFor(root: Container, parts: readonly PathPart[], deleting: boolean): () => void {
  let target: Container = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i];
    const byName = typeof key === 'string' || !Array.isArray(target);
    const present = byName ? Object.hasOwn(target, key) : target[key] !== undefined;
    if (!present) return deleting ? nothing : restorer(target, key);
    const next = target[key];
    if (next === null || (typeof next !== 'object' && typeof next !== 'function')) return nothing; // the write stops here
    target = next as Container;
  }
  return restorer(target, parts[parts.length - 1]);
}

function restorer(target: Container, key: PathPart): () => void {
  if (Array.isArray(target)) {
    const items = target as unknown[];
    const before = items.slice();
    return () => {
      items.length = 0;
      for (let i = 0; i < before.length; i++) if (i in before) items[i] = before[i];
      items.length = before.length;
    };
  }
  const had = Object.hasOwn(target, key);
  const previous = target[key];
  return () => {
    if (had) target[key] = previous;
    else delete target[key];
  };
}

/**
 * Why `setObjectProperty` would refuse to write `value` along `parts` (it returns false and changes
 * nothing when a step on the way holds a value that cannot have properties), or undefined if it can.
 */
export function blockedStep(root: Container, parts: readonly PathPart[]): string | undefined {
  let target: unknown = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i];
    const container = target as Container;
    if (!Object.hasOwn(container, key) && !(Array.isArray(container) && container[key as number] !== undefined)) return undefined;
    const next = container[key];
    if (next === null || (typeof next !== 'object' && typeof next !== 'function')) {
      return `${describePath(parts.slice(0, i + 1))} holds ${next === null ? 'null' : `a ${typeof next}`}, which cannot have properties`;
    }
    target = next;
  }
  return undefined;
}

/** A path as Node-RED writes it: a.b[0]["x y"]. */
export function describePath(parts: readonly PathPart[]): string {
  let text = '';
  for (const part of parts) {
    if (typeof part === 'number') text += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) text += text ? `.${part}` : part;
    else text += text ? `[${JSON.stringify(part)}]` : part;
  }
  return text;
}
