// The per-key queue of a process: the tasks of one key run one after another, so within the process a
// key's updates (and the writes behind them) never race each other; other keys run side by side. The
// SQLite store and the Redis backend each keep one.

export class KeyQueue {
  /** Settles once the last task of a key has; a key is here while it has a task queued or running. */
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every earlier task of `key` has finished, fulfilled or not. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key);
    const run = before ? before.then(task, task) : task();
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Whether a task of `key` is queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
