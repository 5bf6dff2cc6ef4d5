/**
 * `node-red-contrib-flow-cache/context`: a Node-RED context store module. In settings.js, `contextStorage`
 * names it as the module of a store (the README's "Context store" has the snippet):
 *
 *   default: { module: <this module, required by its name>, config: {} }
 *
 * Node-RED calls the module with the store's `config` (plus `settings.userDir`) and uses what it
 * returns: open, close, get, set, keys, delete, clean.
 */
import { type ContextStoreConfig, FlowCacheContext } from './context-store';

const flowCacheContext = Object.assign((config?: ContextStoreConfig) => new FlowCacheContext(config ?? {}), {
  FlowCacheContext,
  /** What Node-RED's log names the module by ("Context store : 'default' [module=…]"). */
  toString: () => 'node-red-contrib-flow-cache/context',
});

export = flowCacheContext;
