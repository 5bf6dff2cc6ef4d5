// Keys, TTLs and numbers from a node's dialog or a message, each checked with a readable error.
import { InputError } from '../lib/errors';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage } from './api';
import { shared } from './i18n';

export const KEY_TYPES = ['msg', 'str', 'flow', 'global', 'env', 'jsonata'] as const;
export const MAX_KEY_LENGTH = 1024;

/** An unset dialog field or message property: undefined, null or ''. */
export function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A finite number from a number or numeric text (as dialogs and messages carry them); undefined otherwise. */
export function numberFrom(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** A finite number from a message or the dialog, else an InputError naming `where`. */
export function finiteNumber(value: unknown, where: string): number {
  const n = numberFrom(value);
  if (n === undefined) throw new InputError(shared('notFinite', { where, value: describe(value) }));
  return n;
}

/** Evaluates a TypedInput property (msg, flow, global, env, jsonata, str, num, ...). */
export function evaluate(RED: NodeAPI, node: Node, value: unknown, type: string, msg: NodeMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
    } catch (error) {
      reject(error);
    }
  });
}

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** Fills `{{path}}` placeholders with message properties; a missing or non-scalar one is an error. */
export function fillPlaceholders(RED: NodeAPI, template: string, msg: NodeMessage, what: string): string {
  return template.replace(PLACEHOLDER, (_match, property: string) => {
    const name = property.startsWith('msg.') ? property.slice(4) : property;
    let value: unknown;
    try {
      value = RED.util.getMessageProperty(msg, name);
    } catch {
      value = undefined;
    }
    if (value === undefined || value === null || value === '')
      throw new InputError(shared('placeholderNotSet', { what, placeholder: `{{${property}}}`, name }));
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new InputError(shared('placeholderNotText', { what, placeholder: `{{${property}}}`, name, type: Array.isArray(value) ? 'array' : typeof value }));
    }
    return String(value);
  });
}

const PLAIN_NAME = /^[A-Za-z_$][\w$]*$/;

/** A property path that is one plain name (`topic`, `payload`), read and written without parsing it as an expression. */
export function isPlainName(path: string): boolean {
  return PLAIN_NAME.test(path) && path !== '__proto__' && path !== 'constructor' && path !== 'prototype';
}

/** Sets a message property by path; a plain name is a direct assignment. */
export function setMessageProperty(RED: NodeAPI, msg: NodeMessage, path: string, value: unknown): void {
  if (isPlainName(path)) msg[path] = value;
  else RED.util.setMessageProperty(msg, path, value, true);
}

/** A message property by path (the common key type, read without a callback); a malformed path reads as unset. */
function messageProperty(RED: NodeAPI, msg: NodeMessage, path: string): unknown {
  if (isPlainName(path)) return Object.hasOwn(msg, path) ? msg[path] : undefined;
  try {
    return RED.util.getMessageProperty(msg, path);
  } catch {
    return undefined;
  }
}

/**
 * Resolves a node's key for one message; an empty or non-string key is an error. A key from the message
 * or a text is returned as it is; one from an expression or context comes as a promise.
 */
export function resolveKey(RED: NodeAPI, node: Node, config: BaseNodeConfig, msg: NodeMessage): string | Promise<string> {
  const keyType = config.keyType || 'msg';
  const keyValue = config.key ?? (keyType === 'msg' ? 'topic' : '');
  // a key from the message or a text is there at once: no promise (and no turn of the microtask queue) for it
  if (keyType === 'str') return checkedKey(fillPlaceholders(RED, keyValue, msg, 'key'), keyType, keyValue);
  if (keyType === 'msg') return checkedKey(messageProperty(RED, msg, keyValue), keyType, keyValue);
  return evaluate(RED, node, keyValue, keyType, msg).then((key) => checkedKey(key, keyType, keyValue));
}

/** A key as resolveKey found it, or an InputError naming where it came from. */
function checkedKey(key: unknown, keyType: string, keyValue: string): string {
  if (typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_LENGTH) return key;
  // a bad key only: the text naming where it came from is made for the error, not for every message
  const where = keyType === 'str' ? shared('theKey') : shared('keyFrom', { property: `${keyType}.${keyValue}` });
  if (key === undefined || key === null) throw new InputError(shared('keyNotSet', { where }));
  if (typeof key !== 'string') throw new InputError(shared('keyNotString', { where, type: Array.isArray(key) ? 'array' : typeof key }));
  if (key.length === 0) throw new InputError(shared('keyEmpty', { where }));
  throw new InputError(shared('keyTooLong', { where, length: key.length, limit: MAX_KEY_LENGTH }));
}

/** Checks the key property of a node's configuration; throws a readable error. */
export function checkKeyConfig(config: BaseNodeConfig): void {
  const keyType = config.keyType || 'msg';
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) throw new InputError(shared('keyTypeUnknown', { type: keyType }));
  if (keyType !== 'msg' && keyType !== 'str') return;
  const key = config.key ?? (keyType === 'msg' ? 'topic' : '');
  if (typeof key !== 'string' || key.trim() === '') throw new InputError(shared('keyConfigEmpty'));
}

/** Parses a TTL given in seconds (from the dialog or msg.ttl): a finite number >= 0, else an error. */
export function parseTtl(value: unknown, where: string): number {
  const n = numberFrom(value);
  if (n === undefined || n < 0) {
    throw new InputError(shared('ttlInvalid', { where, value: describe(value) }));
  }
  return n;
}

/** A short description of a bad input for error texts. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
