// keyv's own adapter test suite, run against the flow-cache store as a Keyv storage adapter (vitest, as keyv runs it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as test from 'vitest';
import { FlowCacheKeyv } from '../../nodes/lib/keyv-adapter';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-keyv-'));
const file = path.join(dir, 'cache.sqlite');
const adapters: FlowCacheKeyv[] = [];

// every adapter shares the one store of the file, as every user in a process does
const store = () => {
  const adapter = new FlowCacheKeyv({ file });
  adapters.push(adapter);
  return adapter;
};

keyvTestSuite(test, Keyv, store);
keyvIteratorTests(test, Keyv, store);

test.it('keeps what was written after the file is closed and opened again', async (t) => {
  const first = new Keyv({ store: new FlowCacheKeyv({ file }), namespace: 'reopen' });
  await first.set('count', { n: 3, at: new Date(0).toISOString() });
  await first.disconnect();
  const again = new Keyv({ store: new FlowCacheKeyv({ file }), namespace: 'reopen' });
  t.expect(await again.get('count')).toEqual({ n: 3, at: '1970-01-01T00:00:00.000Z' });
  await again.disconnect();
});

test.afterAll(async () => {
  await Promise.all(adapters.map((adapter) => adapter.disconnect()));
  fs.rmSync(dir, { recursive: true, force: true });
});
