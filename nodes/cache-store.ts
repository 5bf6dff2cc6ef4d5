import type { Node, NodeAPI } from './lib/node-red';
import type { CacheStoreNode } from './lib/node-support';
import { type CacheStoreConfig, storeSettings } from './lib/store-settings';

export = (RED: NodeAPI) => {
  function CacheStore(this: CacheStoreNode, config: CacheStoreConfig) {
    RED.nodes.createNode(this as Node, config);
    try {
      this.settings = storeSettings(RED, config);
    } catch (error) {
      this.configError = (error as Error).message;
      this.error(`cache-store "${config.name || config.id}": ${this.configError}`);
    }
  }
  RED.nodes.registerType('cache-store', CacheStore);
};
