import fs from 'node:fs';
import path from 'node:path';
import { type DriverChoice, openPlain, sqliteCode } from './driver';
import { CacheError, messageOf } from './errors';
import { APPLICATION_ID, looksLikeOurs } from './schema';

const HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** A path that holds something other than a database of ours: refused, and the file is left as it is. */
export class ForeignFileError extends CacheError {
  constructor(file: string, why: string) {
    super('STORE_FOREIGN_FILE', `${file} is not a flow-cache database (${why}); it was left untouched: choose another file for the cache store`, {
      text: 'foreign',
      values: { file, why },
    });
    this.name = 'ForeignFileError';
  }
}

/** What the 100-byte header of a database file says; undefined for an absent or empty file. */
interface Header {
  size: number;
  applicationId: number;
  /** Why the file is damaged, if the header shows it. */
  damage?: string;
}

/** What a path that is not a regular file is, in words; undefined for a regular file. */
function specialKind(stat: fs.Stats): string | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return 'it is a directory';
  if (stat.isFIFO()) return 'it is a FIFO (named pipe)';
  if (stat.isSocket()) return 'it is a socket';
  if (stat.isCharacterDevice()) return 'it is a character device';
  if (stat.isBlockDevice()) return 'it is a block device';
  return 'it is not a regular file';
}

/**
 * Refuses a database path (or one of the files SQLite and the lock keep beside it) that is not a
 * regular file: a FIFO, socket, device or directory, also behind a symbolic link. Only stat is used,
 * never an open, so a FIFO cannot block the process.
 */
export function checkRegularFiles(file: string): void {
  for (const extra of ['', '.lock', '-wal', '-shm', '-journal']) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file + extra);
    } catch {
      continue; // absent (or a dangling link, which opening reports itself)
    }
    const kind = specialKind(stat);
    if (kind) throw new ForeignFileError(file, extra === '' ? kind : `${path.basename(file + extra)} beside it: ${kind}`);
  }
}

function readHeader(file: string): Header | 'not-sqlite' | undefined {
  checkRegularFiles(file);
  let fd: number;
  try {
    // non-blocking: should the path have become a FIFO since the check, the open does not wait for a writer
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined; // absent or unreadable: opening reports that itself
  }
  try {
    const stat = fs.fstatSync(fd);
    const kind = specialKind(stat);
    if (kind) throw new ForeignFileError(file, kind);
    const size = stat.size;
    if (size === 0) return undefined; // a fresh file SQLite will initialise
    const header = Buffer.alloc(100);
    const read = fs.readSync(fd, header, 0, 100, 0);
    if (read < 100 || !header.subarray(0, 16).equals(HEADER)) return 'not-sqlite';
    const rawPageSize = header.readUInt16BE(16);
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return 'not-sqlite';
    const applicationId = header.readUInt32BE(68);
    const pages = header.readUInt32BE(28);
    const changeCounter = header.readUInt32BE(24);
    const validFor = header.readUInt32BE(92);
    const damage =
      pages > 0 && changeCounter === validFor && size < pages * pageSize ? `truncated: ${size} bytes on disk, header says ${pages * pageSize}` : undefined;
    return { size, applicationId, damage };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Decides whether the store may use `file`. Absent, empty or a sound database of ours: resolves to
 * undefined. A database of ours that is damaged: resolves to why (the caller moves it aside). Anything
 * else (not SQLite at all, another program's database, damage in a file that carries no mark of ours)
 * throws ForeignFileError and changes nothing. The mark is `PRAGMA application_id` in the header, so it
 * is read even when later pages are damaged; files written before the mark existed are recognised by
 * holding nothing but keyv's table and ours.
 */
export async function checkFile(file: string, driver: DriverChoice): Promise<string | undefined> {
  const header = readHeader(file);
  if (header === undefined) return undefined;
  if (header === 'not-sqlite') throw new ForeignFileError(file, 'it is not an SQLite database');
  if (header.applicationId === APPLICATION_ID) return header.damage;
  if (header.applicationId !== 0) throw new ForeignFileError(file, `it belongs to another program (application id ${header.applicationId})`);
  if (header.damage) throw new ForeignFileError(file, `it is damaged (${header.damage}) and carries no mark of this package`);
  let reason: string | undefined;
  try {
    const db = await openPlain(file, driver, { busyTimeoutMs: 1000, readOnly: true });
    try {
      reason = await looksLikeOurs(db);
    } finally {
      await db.close();
    }
  } catch (error) {
    if (isCorruption(error)) throw new ForeignFileError(file, `it cannot be read (${messageOf(error)}) and carries no mark of this package`);
    throw error;
  }
  if (reason) throw new ForeignFileError(file, reason);
  return undefined;
}

/** Driver errors that mean the file itself is damaged. */
export function isCorruption(error: unknown): boolean {
  const code = sqliteCode(error);
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB';
}

/** Moves a damaged database and its WAL files aside; returns the new name of the main file. */
export function moveAside(file: string, stamp: number): string {
  const suffix = `.corrupt-${new Date(stamp).toISOString().replace(/[:.]/g, '-')}`;
  for (const extra of ['', '-wal', '-shm', '-journal']) {
    const from = file + extra;
    if (fs.existsSync(from)) fs.renameSync(from, `${file}${suffix}${extra}`);
  }
  return file + suffix;
}

/** Creates the directory of a database file (owner-only if new). */
export function prepareDirectory(file: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Creates the directory (owner-only if new) and the database file (owner-only) if missing. */
export function prepareFile(file: string): void {
  prepareDirectory(file);
  const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600);
  fs.closeSync(fd);
}
