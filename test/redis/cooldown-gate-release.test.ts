// cooldown-gate's releases on a real Redis server: the cases of test/support/gate-release.ts, each
// release one compare-and-set with the decisions, as on SQLite. Time comes from the injected clock.
import { after, before, describe } from 'node:test';
import { useManualAlarms } from '../../nodes/red/timers';
import { releaseCases, releaseKit } from '../support/gate-release';
import { ManualClock, useRuntime } from '../support/harness';
import { RedisServer } from '../support/redis-server';

describe('cooldown-gate releases on a Redis server', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock, '2026-06-01T10:00:00Z');
  let redis: RedisServer | undefined;
  before(async () => {
    useManualAlarms(true);
    redis = await RedisServer.start();
  });
  after(async () => {
    useManualAlarms(false);
    await redis?.stop();
  });
  releaseCases(
    releaseKit(files, 'redis', () => redis!.url),
    clock,
  );
});
