// Runs a benchmark child as on a device with less memory: in a Linux memory cgroup with that limit.
// Node.js sizes V8's heap (old and young generation) from the memory it may use, the cgroup's limit
// where there is one, so a child confined to 2 GiB sizes its heap as on a 2 GiB Raspberry Pi; no V8
// flag is given. Needs a writable memory controller (cgroup v1 or v2, usually root); where there is
// none, devices are not measured and the reason is given.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Where a memory cgroup can be made, and how its limit is written; or why none can. */
function controller(): { parent: string; limitFile: string } | { missing: string } {
  if (process.platform !== 'linux') return { missing: 'memory cgroups are Linux only' };
  const v1 = path.join(CGROUP_ROOT, 'memory');
  if (fs.existsSync(path.join(v1, 'memory.limit_in_bytes'))) return { parent: v1, limitFile: 'memory.limit_in_bytes' };
  const controllers = path.join(CGROUP_ROOT, 'cgroup.subtree_control');
  if (fs.existsSync(controllers)) {
    if (!fs.readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')) return { missing: `the memory controller is not enabled in ${controllers}` };
    return { parent: CGROUP_ROOT, limitFile: 'memory.max' };
  }
  return { missing: `no memory cgroup controller under ${CGROUP_ROOT}` };
}

/**
 * Runs `node <nodeArgs> <script> <args>` confined to `limitMb` MiB of memory; stdout and stderr go to
 * this process's stderr. Returns null when it ran, else why it could not be confined (nothing ran).
 * Throws when the child itself failed.
 */
export function runConfined(limitMb: number, script: string, args: string[], nodeArgs: string[] = []): string | null {
  const found = controller();
  if ('missing' in found) return found.missing;
  const group = path.join(found.parent, `flow-cache-bench-${process.pid}-${limitMb}`);
  try {
    fs.mkdirSync(group);
    fs.writeFileSync(path.join(group, found.limitFile), String(limitMb * 1024 * 1024));
  } catch (error) {
    try {
      fs.rmdirSync(group);
    } catch {
      // never made
    }
    return `cannot make a memory cgroup in ${found.parent} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; it needs root)`;
  }
  try {
    // the shell moves itself into the group, then becomes node: only the child is confined
    const command = 'echo $$ > "$0" && exec "$@"';
    const result = spawnSync('sh', ['-c', command, path.join(group, 'cgroup.procs'), process.execPath, ...nodeArgs, script, ...args], {
      stdio: ['ignore', 2, 2],
    });
    if (result.status !== 0) throw new Error(`${path.basename(script)} in ${limitMb} MiB exited with ${result.status ?? result.signal}`);
    return null;
  } finally {
    try {
      fs.rmdirSync(group);
    } catch {
      // a group is removable once its last process has exited; the kernel may take a moment
    }
  }
}
