/**
 * The two ways the store reaches SQLite: Node's built-in `node:sqlite` (Node.js >= 22.13, no native
 * build) and the `sqlite3` module through keyv's SQLite adapter (Node.js 20, or where asked for).
 * Both read and write the same file format; the store sees one small interface.
 */
import { createRequire } from 'node:module';

export type DriverName = 'node:sqlite' | 'sqlite3';
export type DriverChoice = DriverName | 'auto';

export const DRIVER_CHOICES: readonly DriverChoice[] = ['auto', 'node:sqlite', 'sqlite3'];

export type SqlRow = Record<string, unknown>;

/** One open database connection. Every call is run in order; the store never overlaps them. */
export interface SqlDriver {
  readonly name: DriverName;
  /** Runs one statement and resolves to its rows ([] for statements that return none). */
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  /** Runs one statement now, if the driver can (node:sqlite); undefined where it cannot (sqlite3 is asynchronous). */
  querySync?(sql: string, params?: readonly unknown[]): SqlRow[];
  close(): Promise<void>;
}

const load = createRequire(__filename);

// the part of node:sqlite used here (the Node.js 20 type package has none)
interface NodeSqliteStatement {
  all(...params: unknown[]): unknown[];
}
interface NodeSqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): NodeSqliteStatement;
  close(): void;
}
interface NodeSqliteModule {
  DatabaseSync: new (file: string, options?: { readOnly?: boolean }) => NodeSqliteDatabase;
}
let nodeSqlite: NodeSqliteModule | null | undefined;

/** `node:sqlite` where this Node.js has it without a flag, else null. */
function nodeSqliteModule(): NodeSqliteModule | null {
  if (nodeSqlite === undefined) {
    try {
      nodeSqlite = load('node:sqlite') as NodeSqliteModule;
    } catch {
      nodeSqlite = null;
    }
  }
  return nodeSqlite;
}

let keyvSqliteAvailable: boolean | undefined;

/** Whether the optional `@keyv/sqlite` adapter and its native `sqlite3` module can be loaded here. */
function sqlite3Available(): boolean {
  if (keyvSqliteAvailable === undefined) {
    try {
      load('sqlite3');
      load('@keyv/sqlite');
      keyvSqliteAvailable = true;
    } catch {
      keyvSqliteAvailable = false;
    }
  }
  return keyvSqliteAvailable;
}

/** The drivers this Node.js can use, preferred first. */
export function availableDrivers(): DriverName[] {
  const names: DriverName[] = [];
  if (nodeSqliteModule()) names.push('node:sqlite');
  if (sqlite3Available()) names.push('sqlite3');
  return names;
}

/**
 * Why no driver loads, and what to do: Node.js 20, 21, 22 before 22.13 and 23 before 23.4 have no
 * node:sqlite without a flag, and the sqlite3 module (an optional dependency: npm leaves it out where
 * its native build fails, or with --ignore-scripts) is their only driver.
 */
const NO_DRIVER = () =>
  `no SQLite driver can be loaded: Node.js ${process.version} has no node:sqlite (built in from Node.js 22.13 and 23.4) and the optional sqlite3 module ` +
  'is not installed or did not build. Run Node-RED on Node.js 22.13 or later, or install the driver in the Node-RED user directory with ' +
  '"npm install @keyv/sqlite@4" (its sqlite3 module needs a prebuilt binary, or Python, make and a C++ compiler to build)';

/** The driver `choice` resolves to here; a clear error when none (or not the one asked for) is available. */
export function resolveDriver(choice: DriverChoice = 'auto'): DriverName {
  if (choice === 'auto') {
    const available = availableDrivers();
    if (available.length > 0) return available[0];
    throw new Error(NO_DRIVER());
  }
  // only the driver asked for is loaded (loading node:sqlite on Node 22 prints an experimental warning)
  if (!(choice === 'node:sqlite' ? nodeSqliteModule() !== null : sqlite3Available())) {
    throw new Error(
      choice === 'node:sqlite'
        ? `driver node:sqlite needs Node.js >= 22.13 (this is ${process.version})`
        : 'driver sqlite3 is not installed (the optional modules @keyv/sqlite and sqlite3 are missing or did not build)',
    );
  }
  return choice;
}

export interface OpenOptions {
  /** How long to wait for a lock held by another connection (ms). */
  busyTimeoutMs: number;
  /** Opens without any right to write (used to look at a file before deciding it is ours). */
  readOnly?: boolean;
}

/**
 * Opens `file` for the store: node:sqlite directly, sqlite3 through keyv's SQLite adapter (which
 * creates keyv's table on connect, so only call this for a file known to be ours).
 */
export async function openDriver(file: string, choice: DriverChoice, options: OpenOptions): Promise<SqlDriver> {
  const name = resolveDriver(choice);
  return name === 'node:sqlite' ? openNodeSqlite(file, options) : openSqlite3(file, options.busyTimeoutMs);
}

/** A plain connection that runs only what it is given (inspection, tests, the lock file). */
export async function openPlain(file: string, choice: DriverChoice, options: OpenOptions): Promise<SqlDriver> {
  const name = resolveDriver(choice);
  return name === 'node:sqlite' ? openNodeSqlite(file, options) : openRawSqlite3(file, options);
}

function openNodeSqlite(file: string, options: OpenOptions): SqlDriver {
  const sqlite = nodeSqliteModule() as NodeSqliteModule;
  const db = new sqlite.DatabaseSync(file, { readOnly: options.readOnly === true });
  const statements = new Map<string, NodeSqliteStatement>();
  const run = (sql: string, params: readonly unknown[] = []): SqlRow[] => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      if (statements.size >= 200) statements.clear();
      statements.set(sql, statement);
    }
    return statement.all(...params) as SqlRow[];
  };
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
  } catch (error) {
    db.close();
    throw error;
  }
  let open = true;
  return {
    name: 'node:sqlite',
    query: (sql, params) => {
      try {
        return Promise.resolve(run(sql, params));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    querySync: run,
    close: async () => {
      if (!open) return;
      open = false;
      statements.clear();
      db.close();
    },
  };
}

interface KeyvSqliteAdapter {
  query(sql: string, ...params: unknown[]): Promise<unknown>;
  disconnect(): Promise<void>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

async function openSqlite3(file: string, busyTimeoutMs: number): Promise<SqlDriver> {
  const { default: KeyvSqlite } = load('@keyv/sqlite') as { default: new (options: object) => KeyvSqliteAdapter };
  const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: 'keyv', busyTimeout: busyTimeoutMs });
  adapter.on('error', () => undefined); // the same error rejects the first query
  try {
    await adapter.query('SELECT 1');
  } catch (error) {
    await adapter.disconnect().catch(() => undefined);
    throw error;
  }
  return {
    name: 'sqlite3',
    query: async (sql, params = []) => (await adapter.query(sql, params)) as SqlRow[],
    close: () => adapter.disconnect(),
  };
}

interface RawSqlite3Database {
  all(sql: string, params: unknown[], callback: (error: Error | null, rows: SqlRow[]) => void): void;
  close(callback: (error: Error | null) => void): void;
  configure(option: 'busyTimeout', value: number): void;
}
interface RawSqlite3Module {
  OPEN_READONLY: number;
  OPEN_READWRITE: number;
  OPEN_CREATE: number;
  Database: new (file: string, mode: number, callback: (error: Error | null) => void) => RawSqlite3Database;
}

function openRawSqlite3(file: string, options: OpenOptions): Promise<SqlDriver> {
  const sqlite3 = load('sqlite3') as RawSqlite3Module;
  const mode = options.readOnly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, mode, (error) => {
      if (error) {
        reject(error);
        return;
      }
      db.configure('busyTimeout', options.busyTimeoutMs);
      resolve({
        name: 'sqlite3',
        query: (sql, params = []) => new Promise((done, fail) => db.all(sql, [...params], (failure, rows) => (failure ? fail(failure) : done(rows ?? [])))),
        close: () => new Promise((done, fail) => db.close((failure) => (failure ? fail(failure) : done()))),
      });
    });
  });
}

/**
 * The SQLite result code name of a driver error ('SQLITE_CORRUPT', 'SQLITE_FULL', ...): sqlite3 puts
 * it in `code`; node:sqlite puts the numeric code in `errcode` and 'ERR_SQLITE_ERROR' in `code`.
 */
export function sqliteCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; errcode?: unknown } | undefined;
  if (typeof e?.errcode === 'number') return PRIMARY_CODES[e.errcode & 0xff];
  if (typeof e?.code === 'string' && e.code.startsWith('SQLITE_')) return e.code;
  return undefined;
}

const PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR',
  2: 'SQLITE_INTERNAL',
  3: 'SQLITE_PERM',
  4: 'SQLITE_ABORT',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM',
  8: 'SQLITE_READONLY',
  9: 'SQLITE_INTERRUPT',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  15: 'SQLITE_PROTOCOL',
  17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG',
  19: 'SQLITE_CONSTRAINT',
  20: 'SQLITE_MISMATCH',
  21: 'SQLITE_MISUSE',
  26: 'SQLITE_NOTADB',
};
