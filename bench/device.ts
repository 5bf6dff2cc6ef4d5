// A Linux memory cgroup, to run a benchmark child as on a device with less memory. Node.js sizes V8's
// heap (old and young generation) from the memory it may use, the cgroup's limit where there is one,
// so a child confined to 2 GiB sizes its heap as on a 2 GiB Raspberry Pi; no V8 flag is given. Needs a
// writable memory controller (cgroup v1 or v2, usually root); where there is none, the reason is given.
import fs from 'node:fs';
import path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** A memory cgroup made for one child: a process that writes its pid to `procs` is confined to it. */
export interface MemoryGroup {
  procs: string;
  /** Removes the group (once the child has exited). */
  remove(): void;
}

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

/** Removes a group directory; a group that was never made, or still holds a process, stays as it is. */
function removeGroup(group: string): void {
  try {
    fs.rmdirSync(group);
  } catch {
    // never made, or its process has not quite gone; the kernel removes nothing by itself
  }
}

/** Makes a memory cgroup limited to `limitMb` MiB; returns why it cannot where it cannot. */
export function memoryGroup(limitMb: number): MemoryGroup | string {
  const found = controller();
  if ('missing' in found) return found.missing;
  const group = path.join(found.parent, `flow-cache-bench-${process.pid}-${limitMb}`);
  try {
    fs.mkdirSync(group);
    fs.writeFileSync(path.join(group, found.limitFile), String(limitMb * 1024 * 1024));
  } catch (error) {
    removeGroup(group);
    return `cannot make a memory cgroup in ${found.parent} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; it needs root)`;
  }
  return { procs: path.join(group, 'cgroup.procs'), remove: () => removeGroup(group) };
}

/** The command and arguments that run `command args` inside `group`: a shell moves itself into it, then becomes the command. */
export function inGroup(group: MemoryGroup, command: string, args: string[]): [string, string[]] {
  return ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', group.procs, command, ...args]];
}
