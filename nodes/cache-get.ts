import type { BaseNodeConfig, Node, NodeAPI } from './red/api';
import { StoreBinding } from './red/binding';
import { bindRuntime, textsOf } from './red/i18n';
import { checkKeyConfig, evaluate, resolveKey, setMessageProperty } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { StatusReporter } from './red/status';
import { cacheInfo } from './red/time';

interface CacheGetConfig extends BaseNodeConfig {
  property?: string;
  default?: string;
  defaultType?: string;
}

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  const t = textsOf(RED, 'cache-get');
  function CacheGet(this: Node, config: CacheGetConfig) {
    RED.nodes.createNode(this, config);
    const status = new StatusReporter(this);
    const property = (config.property || 'payload').replace(/^msg\./, '');
    const defaultType = config.defaultType || 'none';
    let binding: StoreBinding;
    try {
      checkKeyConfig(config);
      binding = new StoreBinding(RED, this, config.store, status);
    } catch (error) {
      rejectAll(this, status, error);
      return;
    }
    let hits = 0;
    let misses = 0;

    onInput(this, status, async (msg, send) => {
      // a key and a namespace that are there at once are taken without awaiting (a microtask turn each)
      const found = resolveKey(RED, this, config, msg);
      const key = typeof found === 'string' ? found : await found;
      const opened = binding.namespace();
      const cache = opened instanceof Promise ? await opened : opened;
      const entry = await cache.get(key);
      if (entry) {
        setMessageProperty(RED, msg, property, entry.value);
        msg.cache = cacheInfo(key, true, entry, binding.zone);
        hits++;
        status.set(() => ({ fill: 'green', shape: 'dot', text: t('status.hit', { key, hits, misses }) }));
        send([msg, null]);
        return;
      }
      msg.cache = cacheInfo(key, false, undefined, binding.zone);
      misses++;
      if (defaultType !== 'none') {
        const fallback = await evaluate(RED, this, config.default ?? '', defaultType, msg);
        setMessageProperty(RED, msg, property, fallback);
        status.set(() => ({ fill: 'yellow', shape: 'dot', text: t('status.default', { key, hits, misses }) }));
        send([msg, null]);
        return;
      }
      status.set(() => ({ fill: 'yellow', shape: 'ring', text: t('status.miss', { key, hits, misses }) }));
      send([null, msg]);
    });

    releaseOnClose(this, status, binding);
  }
  RED.nodes.registerType('cache-get', CacheGet);
};
