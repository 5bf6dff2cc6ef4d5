// A node's life: every message ends (done or done(err)), and closing waits for what is in progress.
import { CacheError, InputError, messageOf } from '../lib/errors';
import type { DoneFunction, Node, NodeMessage, SendFunction } from './api';
import type { StoreBinding } from './binding';
import { localize, shared } from './i18n';
import { type StatusReporter, shorten } from './status';

/** How many messages a node is working on, and who waits for it to have none (closing). */
interface Activity {
  count: number;
  idle: (() => void)[];
}

/** The messages each node is working on, so closing can wait for them. */
const inProgress = new WeakMap<Node, Activity>();

function activityOf(node: Node): Activity {
  let activity = inProgress.get(node);
  if (!activity) {
    activity = { count: 0, idle: [] };
    inProgress.set(node, activity);
  }
  return activity;
}

/**
 * Registers an input handler that ends every message: the handler's errors turn the status red
 * and reach Catch nodes through done(err); Node-RED never sees a rejected promise.
 */
export function onInput(node: Node, status: StatusReporter, handler: (msg: NodeMessage, send: SendFunction) => Promise<void>): void {
  const activity = activityOf(node);
  const finished = () => {
    if (--activity.count > 0 || activity.idle.length === 0) return;
    const waiting = activity.idle;
    activity.idle = [];
    for (const wake of waiting) wake();
  };
  node.on('input', (msg, send, done: DoneFunction) => {
    let work: Promise<void>;
    try {
      work = handler(msg, send);
    } catch (error) {
      work = Promise.reject(error);
    }
    activity.count++;
    work.then(
      () => {
        finished();
        done();
      },
      (error: unknown) => {
        finished();
        const err = localize(error instanceof Error ? error : new Error(String(error)));
        status.set({ fill: 'red', shape: 'ring', text: shorten(err.message) }, true);
        done(err);
      },
    );
  });
}

/** A node whose configuration is invalid still ends every message with the configuration error. */
export function rejectAll(node: Node, status: StatusReporter, error: unknown): void {
  const message = messageOf(error);
  status.set({ fill: 'red', shape: 'ring', text: shorten(message) }, true);
  node.error(message);
  // a store error keeps its code (STORE_INVALID, STORE_MISSING); anything else is the node's own bad setting
  const failure = error instanceof CacheError ? error : new InputError(message);
  node.on('input', (_msg, _send, done) => done(failure));
}

/** How long closing waits for the messages a node is still working on before it lets go of the store anyway. */
export const CLOSE_DRAIN_MS = 10_000;

/**
 * Ends a node cleanly on redeploy or stop: clears its status timer, stops the binding from opening
 * anything, lets `settle` finish (node-specific in-flight work) and the messages still in
 * progress end, including those Node-RED delivers after close began, then releases the store,
 * which closes (flushing deferred writes) once its last user has gone.
 */
export function releaseOnClose(node: Node, status: StatusReporter, binding: StoreBinding, settle?: () => Promise<unknown>): void {
  node.on('close', (_removed, done) => {
    status.clear();
    binding.beginClose();
    Promise.resolve()
      .then(() => settle?.())
      .catch(() => undefined)
      .then(() => drain(node, CLOSE_DRAIN_MS))
      .then(() => binding.release())
      .catch((error: unknown) => node.error(shared('closeFailed', { cause: messageOf(localize(error)) })))
      .then(() => done());
  });
}

/** One turn of the event loop: messages Node-RED had already routed to a node are delivered by then. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Waits until `node` has no message in progress and none still on its way, at most `limitMs`;
 * warns about what is still running then. Node-RED delivers each message a turn of the event loop
 * after routing it, so messages routed to the node just before it was stopped arrive after close
 * began: two quiet turns with nothing in progress mean nothing more is coming.
 */
async function drain(node: Node, limitMs: number): Promise<void> {
  const activity = activityOf(node);
  const deadline = Date.now() + limitMs;
  for (;;) {
    await nextTurn();
    await nextTurn();
    if (activity.count === 0) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      node.warn(shared('drainTimeout', { count: activity.count, seconds: limitMs / 1000 }));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      activity.idle.push(resolve);
      timer = setTimeout(resolve, left);
    });
    clearTimeout(timer);
  }
}
