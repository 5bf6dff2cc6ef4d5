/**
 * One process per database file. Each store holds an exclusive SQLite lock on `<file>.lock` for as
 * long as it is open: the operating system drops the lock when the process ends, however it ends,
 * so a crash never leaves a stale lock behind. Who holds it is written into the lock file, where a
 * second process can read it and name the holder in its error.
 */
import fs from 'node:fs';
import os from 'node:os';
import { type DriverChoice, openPlain, type SqlDriver, sqliteCode } from './driver';

/** How long writing or reading the holder's name waits for the other process (ms); taking the lock never waits. */
const NAME_WAIT_MS = 2000;

export interface FileLock {
  release(): Promise<void>;
}

/** Who holds a database: written at open, read by a second process that is refused. */
export interface Holder {
  pid: number;
  host: string;
  since: string;
}

export function currentHolder(): Holder {
  return { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
}

/**
 * Takes the lock of `file`, or resolves to the holder if another connection (another process, or a
 * second store in this one) has it. The lock is a write transaction kept open on `<file>.lock`: other
 * connections can still read who holds it, but cannot start a write of their own.
 */
export async function takeLock(file: string, driver: DriverChoice): Promise<FileLock | { holder: Holder | undefined }> {
  const lockFile = `${file}.lock`;
  fs.closeSync(fs.openSync(lockFile, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600));
  const db: SqlDriver = await openPlain(lockFile, driver, { busyTimeoutMs: 0 });
  const busy = (error: unknown) => ['SQLITE_BUSY', 'SQLITE_LOCKED'].includes(sqliteCode(error) ?? '');
  try {
    await db.query('BEGIN IMMEDIATE');
    await db.query('CREATE TABLE IF NOT EXISTS holder(pid INTEGER, host TEXT, since TEXT)');
    await db.query('DELETE FROM holder');
    const me = currentHolder();
    await db.query('INSERT INTO holder(pid, host, since) VALUES (?, ?, ?)', [me.pid, me.host, me.since]);
    // publishing the name needs a moment without readers, and a process that was just refused may be
    // reading the previous name: wait for it (only taking the lock itself must never wait)
    await db.query(`PRAGMA busy_timeout = ${NAME_WAIT_MS}`);
    await db.query('COMMIT');
    await db.query('PRAGMA busy_timeout = 0');
    // another process may take the lock between the commit and this: then it is the holder, and this one is refused
    await db.query('BEGIN IMMEDIATE');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    if (!busy(error)) {
      await db.close().catch(() => undefined);
      throw error;
    }
    let holder: Holder | undefined;
    try {
      // the holder may be committing its name: wait for that rather than report no name
      await db.query(`PRAGMA busy_timeout = ${NAME_WAIT_MS}`);
      const rows = await db.query('SELECT pid, host, since FROM holder');
      if (rows[0]) holder = { pid: Number(rows[0].pid), host: String(rows[0].host), since: String(rows[0].since) };
    } catch {
      holder = undefined; // the holder is still writing its name: report it without one
    }
    await db.close().catch(() => undefined);
    return { holder };
  }
  let held = true;
  return {
    async release() {
      if (!held) return;
      held = false;
      await db.query('ROLLBACK').catch(() => undefined);
      await db.close();
    },
  };
}

/** "pid 123 on host pi, since <time>" from the holder stored in the database, or a plain phrase when unknown. */
export function describeHolder(holder: Holder | undefined): string {
  if (!holder) return 'another process';
  return `process ${holder.pid} on ${holder.host} (open since ${holder.since})`;
}
