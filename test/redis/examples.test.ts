// The example flows with a Redis store (redis/shared-counter.json), run on a real redis-server by the
// runtime suite's own example tests: `npm test` runs the other examples without a redis-server.
process.env.FLOW_CACHE_EXAMPLES = 'redis';
require('../runtime/examples.test');
