// The part of the Node-RED runtime API these nodes use, typed here so the package needs no type package.

export interface NodeMessage {
  [key: string]: unknown;
  _msgid?: string;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFunction = (msg: NodeMessage | null | (NodeMessage | null)[]) => void;
export type DoneFunction = (error?: Error) => void;

export interface NodeFlow {
  id: string;
  TYPE?: string;
  parent?: NodeFlow;
}

export interface Node {
  id: string;
  z?: string;
  name?: string;
  type: string;
  _flow?: NodeFlow;
  on(event: 'input', handler: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void): void;
  on(event: 'close', handler: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage | null | (NodeMessage | null)[]): void;
  status(status: NodeStatus | Record<string, never>): void;
  log(message: string): void;
  warn(message: string): void;
  error(message: string | Error, msg?: NodeMessage): void;
  credentials?: Record<string, string | undefined>;
}

export interface NodeAPI {
  nodes: {
    createNode(node: Node, config: object): void;
    registerType(
      type: string,
      nodeConstructor: unknown,
      options?: { credentials?: Record<string, { type: string }>; settings?: Record<string, { value: unknown; exportable?: boolean }> },
    ): void;
    getNode(id: string): unknown;
  };
  util: {
    evaluateNodeProperty(value: unknown, type: string, node: Node, msg: NodeMessage, callback: (err: Error | null, result: unknown) => void): void;
    getMessageProperty(msg: NodeMessage, path: string): unknown;
    setMessageProperty(msg: NodeMessage, path: string, value: unknown, createMissing?: boolean): boolean;
    cloneMessage<T>(msg: T): T;
  };
  settings: { userDir?: string; [key: string]: unknown };
  log: { warn(message: string): void; error(message: string): void; info(message: string): void };
  _(id: string, substitutions?: Record<string, unknown>): string;
}

/** The base fields every node of this package has in its configuration. */
export interface BaseNodeConfig {
  id: string;
  name?: string;
  store?: string;
  key?: string;
  keyType?: string;
}
