import { InputError } from './lib/errors';
import type { BaseNodeConfig, Node, NodeAPI } from './red/api';
import { StoreBinding } from './red/binding';
import { bindRuntime, textsOf } from './red/i18n';
import { checkKeyConfig, describe, evaluate, parseTtl, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { configNumber } from './red/settings';
import { StatusReporter } from './red/status';
import { cacheInfo } from './red/time';

interface CacheSetConfig extends BaseNodeConfig {
  operation?: string;
  value?: string;
  valueType?: string;
  ttl?: number | string;
}

const OPERATIONS = ['set', 'delete', 'clear'];

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  const t = textsOf(RED, 'cache-set');
  function CacheSet(this: Node, config: CacheSetConfig) {
    RED.nodes.createNode(this, config);
    const status = new StatusReporter(this);
    const operation = config.operation || 'set';
    const valueType = config.valueType || 'msg';
    const valueProperty = config.value ?? (valueType === 'msg' ? 'payload' : '');
    let binding: StoreBinding;
    let configTtl: number;
    try {
      if (!OPERATIONS.includes(operation)) throw new InputError(t('errors.operation', { operation }));
      if (operation !== 'clear') {
        checkKeyConfig(config);
      }
      configTtl = parseTtl(configNumber(config.ttl, 0), 'TTL');
      binding = new StoreBinding(RED, this, config.store, status);
    } catch (error) {
      rejectAll(this, status, error);
      return;
    }
    let writes = 0;

    onInput(this, status, async (msg, send) => {
      if (operation === 'clear') {
        const cache = await binding.namespace();
        await cache.clear();
        msg.cache = { key: null, hit: false, storedAt: null, expiresAt: null, age: null, cleared: true };
        status.set({ fill: 'blue', shape: 'dot', text: t('status.cleared') });
        send(msg);
        return;
      }
      const key = await resolveKey(RED, this, config, msg);
      if (operation === 'delete') {
        const cache = await binding.namespace();
        const existed = await cache.delete(key);
        msg.cache = cacheInfo(key, existed, undefined, binding.zone);
        status.set({ fill: 'blue', shape: 'ring', text: t('status.deleted', { key }) });
        send(msg);
        return;
      }
      const ttl = msg.ttl === undefined ? configTtl : parseTtl(msg.ttl, 'msg.ttl');
      const value = await evaluate(RED, this, valueProperty, valueType, msg);
      if (value === undefined) {
        throw new InputError(
          t('errors.nothingToStore', {
            what: valueType === 'msg' ? `msg.${valueProperty}` : t('errors.typedValue', { type: valueType }),
            value: describe(value),
          }),
        );
      }
      const cache = await binding.namespace();
      const { previous, entry } = await cache.update(key, () => ({ value, ttl }));
      msg.cache = cacheInfo(key, previous !== undefined, entry, binding.zone);
      writes++;
      status.set(() => ({ fill: 'green', shape: 'dot', text: t('status.stored', { key, count: writes }) }));
      send(msg);
    });

    releaseOnClose(this, status, binding);
  }
  RED.nodes.registerType('cache-set', CacheSet);
};
