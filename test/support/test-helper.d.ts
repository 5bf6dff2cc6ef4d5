declare module 'node-red-node-test-helper' {
  const helper: {
    init(runtimePath: string, settings?: object): void;
    settings(settings?: object): object;
    load(nodes: unknown, flow: object[], credentials?: object): Promise<void>;
    unload(): Promise<void>;
    setFlows(flow: object[], type?: string, credentials?: object): Promise<void>;
    getNode(id: string): unknown;
    startServer(): Promise<void>;
    stopServer(): Promise<void>;
    request(): any;
    url(): string;
    log(): { args: unknown[][] } & { getCalls(): { args: unknown[] }[] };
  };
  export = helper;
}
