// The cooldown gates running in this process, by the database file and namespace they keep their
// keys in: the admin API's "Reset cooldown" asks a gate to reset a key as msg.reset does, so what it
// held back is sent by a running gate (the one that held it, else another on the same keys).
import path from 'node:path';

/** What the admin API may ask of a running gate. */
export interface RunningGate {
  readonly id: string;
  /** Whether the gate sends summaries (a summary of a gate that is gone is taken over by one that does). */
  readonly summary: boolean;
  /** False once the gate has begun closing. */
  running(): boolean;
  /** Resets a key as msg.reset does (a held summary is sent); resolves with whether the key held anything. */
  reset(key: string): Promise<boolean>;
}

const gates = new Map<string, Set<RunningGate>>();

const placeOf = (file: string, namespace: string) => `${path.resolve(file)}\u0000${namespace}`;

/** Registers a running gate on a database file's namespace; returns what unregisters it. */
export function registerGate(file: string, namespace: string, gate: RunningGate): () => void {
  const place = placeOf(file, namespace);
  let set = gates.get(place);
  if (!set) {
    set = new Set();
    gates.set(place, set);
  }
  set.add(gate);
  return () => {
    const held = gates.get(place);
    held?.delete(gate);
    if (held?.size === 0) gates.delete(place);
  };
}

/**
 * The running gate to reset a key of a namespace: the one that held its summary back (`heldBy`), else
 * one that sends summaries, else any (which drops the summary, as its msg.reset would); undefined when
 * none runs.
 */
export function gateFor(file: string, namespace: string, heldBy: string | undefined): RunningGate | undefined {
  const running = [...(gates.get(placeOf(file, namespace)) ?? [])].filter((gate) => gate.running());
  if (heldBy === undefined) return running[0];
  return running.find((gate) => gate.summary && gate.id === heldBy) ?? running.find((gate) => gate.summary) ?? running[0];
}
