import { messageOf } from './lib/errors';
import { STORE_DEFAULTS } from './lib/options';
import { registerAdminApi } from './red/admin';
import type { Node, NodeAPI } from './red/api';
import { bindRuntime, shared } from './red/i18n';
import { type CacheStoreConfig, type CacheStoreCredentials, type CacheStoreNode, storeSettings } from './red/settings';

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  function CacheStore(this: CacheStoreNode, config: CacheStoreConfig) {
    RED.nodes.createNode(this as Node, config);
    try {
      // a Redis user and password are credentials: Node-RED keeps them out of the flow file (flows_cred.json, encrypted)
      const credentials = (this as Node & { credentials?: CacheStoreCredentials }).credentials;
      this.settings = storeSettings(RED, config, credentials);
    } catch (error) {
      this.configError = messageOf(error);
      this.error(shared('configError', { name: config.name || config.id, reason: this.configError }));
    }
  }
  // the editor reads the store's defaults from here (RED.settings.cacheStoreDefaults), so the dialog and the store never disagree
  RED.nodes.registerType('cache-store', CacheStore, {
    credentials: { username: { type: 'text' }, password: { type: 'password' } },
    settings: { cacheStoreDefaults: { value: STORE_DEFAULTS, exportable: true } },
  });
  // what the stores hold, for the editor's flow cache sidebar (routes added once per admin app)
  registerAdminApi(RED);
};
