/**
 * A store used from a separate process, driven by the multi-process tests:
 *   hold <file>                    open the store, print "ready <driver>", stay until killed
 *   schema <file>                  bring the schema of <file> up to date without taking the lock
 *   open <file>                    open the store, write its pid under "pid-<pid>", close, print "ok <driver>"
 *   deferred-then-crash <file> <n> n deferred increments, then an uncaught error ends the process
 *   write-all <file>               write one value of every kind, print the driver used
 *   read-all <file>                print every value written by write-all as tagged JSON
 */
import { openPlain } from '../../../nodes/lib/driver';
import { ensureSchema } from '../../../nodes/lib/schema';
import { encodeValue } from '../../../nodes/lib/serialize';
import { Store } from '../../../nodes/lib/store';

const NS = 'child';
const [mode, file, arg] = process.argv.slice(2);
const logger = { warn: (m: string) => console.error(`warn: ${m}`), error: (m: string) => console.error(`error: ${m}`) };

/** One value of each kind the store keeps, as both drivers must read it back. */
export function everyKind(): Record<string, unknown> {
  return {
    text: 'héllo \u0000 wörld',
    number: 12.5,
    negativeZero: -0,
    big: 2n ** 70n,
    date: new Date('2026-06-01T10:00:00.000Z'),
    buffer: Buffer.from([0, 1, 254, 255]),
    map: new Map<string, unknown>([
      ['a', 1],
      ['b', [true, null]],
    ]),
    set: new Set([1, 'two']),
    nested: { list: [1, { deep: 'yes' }], nan: Number.NaN },
  };
}

async function main(): Promise<void> {
  switch (mode) {
    case 'hold': {
      const store = await Store.open(file, { logger, sweepInterval: 0 });
      await store.set(NS, 'holder', process.pid);
      console.log(`ready ${store.driver}`);
      setInterval(() => undefined, 60_000);
      return;
    }
    case 'schema': {
      // as the store makes a schema: on a plain connection of the driver in use
      const db = await openPlain(file, 'auto', { busyTimeoutMs: 5000 });
      try {
        await ensureSchema(db, false);
      } finally {
        await db.close();
      }
      console.log('ok');
      return;
    }
    case 'open': {
      const store = await Store.open(file, { logger, sweepInterval: 0 });
      await store.set(NS, `pid-${process.pid}`, process.pid);
      await store.close();
      console.log(`ok ${store.driver}`);
      return;
    }
    case 'deferred-then-crash': {
      const store = await Store.open(file, { logger, durability: 'deferred', flushInterval: 3600, sweepInterval: 0 });
      for (let i = 0; i < Number(arg); i++) await store.update(NS, 'count', (c) => ({ value: ((c?.value as number) ?? 0) + 1, evictable: false }));
      console.log(`counted ${store.driver}`);
      setImmediate(() => {
        throw new Error('an unhandled error elsewhere in the process');
      });
      return;
    }
    case 'write-all': {
      const store = await Store.open(file, { logger, sweepInterval: 0 });
      for (const [key, value] of Object.entries(everyKind())) await store.set(NS, key, value, key === 'text' ? 3600 : undefined);
      await store.close();
      console.log(store.driver);
      return;
    }
    case 'read-all': {
      const store = await Store.open(file, { logger, sweepInterval: 0 });
      const out: Record<string, string> = {};
      for (const key of await store.keys(NS)) out[key] = encodeValue((await store.get(NS, key))?.value);
      await store.set(NS, `from-${store.driver}`, true);
      await store.close();
      console.log(JSON.stringify({ driver: store.driver, values: out }));
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error));
    process.exit(2);
  });
}
