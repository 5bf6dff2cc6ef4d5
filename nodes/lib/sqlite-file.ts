import fs from 'node:fs';
import path from 'node:path';

const HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Why a database file cannot be a healthy SQLite file, or undefined if it looks sound.
 * Reads only the 100-byte header, so it costs the same for an empty and a large store.
 */
export function damageOf(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined; // absent or unreadable: opening reports that itself
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return undefined; // a fresh file SQLite will initialise
    const header = Buffer.alloc(100);
    const read = fs.readSync(fd, header, 0, 100, 0);
    if (read < 100 || !header.subarray(0, 16).equals(HEADER)) return 'not an SQLite database (bad header)';
    const rawPageSize = header.readUInt16BE(16);
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return 'not an SQLite database (bad page size)';
    const pages = header.readUInt32BE(28);
    const changeCounter = header.readUInt32BE(24);
    const validFor = header.readUInt32BE(92);
    if (pages > 0 && changeCounter === validFor && size < pages * pageSize) {
      return `truncated: ${size} bytes on disk, header says ${pages * pageSize}`;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Error codes from the sqlite3 driver that mean the file itself is damaged. */
export function isCorruption(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
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

/** Creates the directory (owner-only if new) and the database file (owner-only) if missing. */
export function prepareFile(file: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600);
  fs.closeSync(fd);
}
