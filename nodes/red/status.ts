// Node statuses: rate-limited, with the store's own news shown over the node's.
import type { Node, NodeStatus } from './api';

/** A status text cut to what the editor shows under a node. */
export function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Sets a node's status at most every `intervalMs` (the latest one always shows, a little later),
 * so a burst of messages does not flood the editor with status events.
 */
export class StatusReporter {
  static intervalMs = 250;
  /** How long a notice (an eviction round) stays before the node's own status returns. */
  static noticeMs = 5000;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  /** the node's own status, or what makes it: a status of every message is made only when shown */
  private latest: NodeStatus | (() => NodeStatus) | undefined;
  private alerting: NodeStatus | undefined;
  private noticing: NodeStatus | undefined;
  private noticeTimer: NodeJS.Timeout | undefined;
  /** Whether a status of this reporter's is shown under the node now. */
  private showing = false;

  constructor(private readonly node: Node) {}

  /** Nodes (by id) whose last status was red: a node that replaces one clears it as it starts. */
  private static leftRed = new Set<string>();

  /**
   * A node just started: a red status the node it replaced left under it (a "disconnected" from
   * before a deploy that fixed the store) is cleared, unless this node shows something of its own already.
   */
  fresh(): void {
    const id = this.node.id;
    if (!StatusReporter.leftRed.has(id) || this.alerting || this.noticing || this.latest) return;
    StatusReporter.leftRed.delete(id);
    this.showing = true;
    this.show();
  }

  /** A status that stays over the node's own until it is lifted (undefined lifts it). */
  alert(status: NodeStatus | undefined): void {
    this.alerting = status;
    this.show();
  }

  /** A status shown for `noticeMs` over the node's own (an alert still wins). */
  notice(status: NodeStatus): void {
    this.noticing = status;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.noticing = undefined;
      this.noticeTimer = undefined;
      this.show();
    }, StatusReporter.noticeMs);
    this.noticeTimer.unref?.();
    this.show();
  }

  /** Clears the node's own status where it reports a failure (red): the store it failed on works again. */
  liftFailure(): void {
    if (this.own()?.fill !== 'red') return;
    this.latest = {};
    this.show();
  }

  /**
   * The node's own status. A function is called only when the status shows (at most every
   * `intervalMs`), so a node that sets one per message does not format a text per message.
   */
  set(status: NodeStatus | (() => NodeStatus), immediate = false): void {
    this.latest = status;
    const t = Date.now();
    if (immediate || t - this.last >= StatusReporter.intervalMs) {
      this.show();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.show(), StatusReporter.intervalMs - (t - this.last));
      this.timer.unref?.();
    }
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = undefined;
  }

  private show(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.last = Date.now();
    const shown = this.alerting ?? this.noticing ?? this.own();
    if (shown) {
      this.node.status(shown);
      this.showing = true;
      if (shown.fill === 'red') StatusReporter.leftRed.add(this.node.id);
      else StatusReporter.leftRed.delete(this.node.id);
    } else if (this.showing) {
      StatusReporter.leftRed.delete(this.node.id);
      // an alert lifted with nothing of the node's own under it: the status goes, not stays as it was
      this.node.status({});
      this.showing = false;
    }
  }

  private own(): NodeStatus | undefined {
    if (typeof this.latest === 'function') this.latest = this.latest();
    return this.latest;
  }
}

export /** The driver's own words for a failure (the innermost cause), without the "cannot write cache database <path>:" leads. */
function shortCause(error: Error | undefined): string {
  let inner: unknown = error;
  while (inner instanceof Error && (inner as { cause?: unknown }).cause instanceof Error) inner = (inner as { cause?: unknown }).cause;
  const text = inner instanceof Error ? inner.message : 'unknown error';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
