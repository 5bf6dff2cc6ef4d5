/**
 * A one-time copy of Node-RED's `localfilesystem` context files into the store, so switching stores
 * keeps the state flows had. Layout of those files (as localfilesystem writes them):
 *   <dir>/global/global.json       global context
 *   <dir>/<flow id>/flow.json      flow context
 *   <dir>/<flow id>/<node id>.json node context (scope "<node id>:<flow id>")
 */
import fs from 'node:fs';
import path from 'node:path';
import { messageOf } from '../lib/errors';
import type { Store } from '../lib/store';

/** The namespace that records which files were copied (their modification times), so each is copied once. */
export const IMPORT_NAMESPACE = 'context-import';
const IMPORT_KEY = 'localfilesystem';

export interface ImportRecord {
  /** file (relative to the directory, with '/') -> its modification time (ms) when it was copied */
  files: Record<string, number>;
}

export interface ImportResult {
  files: number;
  keys: number;
  scopes: number;
  /** keys left alone because the store's value is newer than the file */
  kept: number;
  /** files that could not be read as JSON (left where they are) */
  damaged: string[];
  /** keys the store refused (an empty key, say), with the reason */
  refused: string[];
}

interface ContextFile {
  relative: string;
  full: string;
  scope: string;
}

/** The context files under `dir`, with the scope each one holds, as localfilesystem reads them. */
function contextFiles(dir: string): ContextFile[] {
  let top: fs.Dirent[];
  try {
    top = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: ContextFile[] = [];
  for (const entry of top) {
    if (entry.name.startsWith('.') || !entry.isDirectory()) continue;
    for (const name of fs.readdirSync(path.join(dir, entry.name)).sort()) {
      if (!name.endsWith('.json')) continue;
      const scope = entry.name === 'global' ? 'global' : name === 'flow.json' ? entry.name : `${name.slice(0, -'.json'.length)}:${entry.name}`;
      files.push({ relative: `${entry.name}/${name}`, full: path.join(dir, entry.name, name), scope });
    }
  }
  return files.sort((a, b) => (a.relative < b.relative ? -1 : 1));
}

/**
 * Copies every key of the context files under `dir` that the store does not hold in a newer version
 * (a key stored here after the file was last written is kept). A file already copied and unchanged
 * since is skipped; a file that is not JSON is reported and left alone. `namespaceOf` names the store
 * namespace of a scope.
 */
export async function importLocalFileSystem(store: Store, dir: string, namespaceOf: (scope: string) => string): Promise<ImportResult> {
  const result: ImportResult = { files: 0, keys: 0, scopes: 0, kept: 0, damaged: [], refused: [] };
  const record = ((await store.get(IMPORT_NAMESPACE, IMPORT_KEY))?.value as ImportRecord | undefined) ?? { files: {} };
  const scopes = new Set<string>();
  let changed = false;
  for (const file of contextFiles(dir)) {
    const stat = fs.statSync(file.full);
    // a FIFO, socket or device would block the read (or never end): only regular files are read
    if (!stat.isFile()) {
      result.damaged.push(file.relative);
      continue;
    }
    if (record.files[file.relative] === stat.mtimeMs) continue;
    const text = fs.readFileSync(file.full, 'utf8');
    let data: unknown;
    try {
      data = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      data = undefined;
    }
    record.files[file.relative] = stat.mtimeMs;
    changed = true;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      result.damaged.push(file.relative);
      continue;
    }
    const namespace = namespaceOf(file.scope);
    const stamps = new Map((await store.entries(namespace)).map(([key, entry]) => [key, entry.storedAt]));
    const writes: Promise<unknown>[] = [];
    for (const [key, value] of Object.entries(data)) {
      const storedAt = stamps.get(key);
      if (storedAt !== undefined && storedAt >= stat.mtimeMs) {
        result.kept++;
        continue;
      }
      writes.push(
        store.set(namespace, key, value, undefined, { evictable: false }).then(
          () => {
            result.keys++;
            scopes.add(file.scope);
          },
          (error: unknown) => {
            result.refused.push(`${file.relative} key ${JSON.stringify(key)} (${messageOf(error)})`);
          },
        ),
      );
    }
    await Promise.all(writes);
    result.files++;
  }
  if (changed) await store.set(IMPORT_NAMESPACE, IMPORT_KEY, record, undefined, { evictable: false });
  result.scopes = scopes.size;
  return result;
}

/** What an import did, for the log; undefined when there was nothing new to copy. */
export function describeImport(dir: string, result: ImportResult): string | undefined {
  if (result.files === 0 && result.damaged.length === 0) return undefined;
  const parts = [
    `copied ${result.keys} ${result.keys === 1 ? 'key' : 'keys'} of ${result.scopes} ${result.scopes === 1 ? 'scope' : 'scopes'} from ${result.files} localfilesystem context ${result.files === 1 ? 'file' : 'files'} in ${dir}`,
  ];
  if (result.kept > 0) parts.push(`kept ${result.kept} ${result.kept === 1 ? 'key' : 'keys'} stored here after the file was written`);
  if (result.refused.length > 0) parts.push(`could not copy ${result.refused.join(', ')}`);
  if (result.damaged.length > 0) parts.push(`skipped ${result.damaged.join(', ')}: not a JSON object (the file is left as it is)`);
  return parts.join('; ');
}
