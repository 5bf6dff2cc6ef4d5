import { messageOf } from './lib/errors';
import { STORE_DEFAULTS } from './lib/options';
import { registerAdminApi } from './red/admin';
import type { Node, NodeAPI } from './red/api';
import { bindRuntime, shared } from './red/i18n';
import { type CacheStoreConfig, type CacheStoreNode, storeSettings } from './red/settings';

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  function CacheStore(this: CacheStoreNode, config: CacheStoreConfig) {
    RED.nodes.createNode(this as Node, config);
    try {
      this.settings = storeSettings(RED, config);
    } catch (error) {
      this.configError = messageOf(error);
      this.error(shared('configError', { name: config.name || config.id, reason: this.configError }));
    }
  }
  // the editor reads the store's defaults from here (RED.settings.cacheStoreDefaults), so the dialog and the store never disagree
  RED.nodes.registerType('cache-store', CacheStore, { settings: { cacheStoreDefaults: { value: STORE_DEFAULTS, exportable: true } } });
  // what the stores hold, for the editor's flow cache sidebar (routes added once per admin app)
  registerAdminApi(RED);
};
