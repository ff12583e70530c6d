/**
 * @module The node's side of the storage write thread (write-worker.ts): transactions as promises,
 * answered in order. A failed transaction rejects its promise with the database's message.
 */
import { assert } from "../assert.ts";
import { packStatements, type WriteReply, type WriteRequest } from "./write-protocol.ts";
import type { SqlStatement } from "./sql-writer.ts";

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

export class WriteThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lifecycle: Pending | null = null;

  private constructor() {
    this.worker = new Worker(new URL("./write-worker.ts", import.meta.url).href);
    this.worker.onmessage = (event: MessageEvent<WriteReply>) => this.receive(event.data);
    this.worker.onerror = (event) => this.failAll(new Error(`write thread crashed: ${event.message}`));
  }

  static async open(path: string): Promise<WriteThread> {
    const thread = new WriteThread();
    await thread.lifecycleStep({ type: "open", path });
    return thread;
  }

  /** One transaction; `durable`: fsynced (FULL) before it resolves, else NORMAL (see database.ts). */
  transaction(statements: readonly SqlStatement[], durable: boolean): Promise<void> {
    assert(statements.length > 0, "an empty transaction is a caller bug");
    const id = this.nextId++;
    const { statements: packed, blobs } = packStatements(statements);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.pending.set(id, { resolve, reject });
    const request: WriteRequest = { type: "commit", id, durable, statements: packed, blobs };
    this.worker.postMessage(request, [blobs]);
    return promise;
  }

  async close(): Promise<void> {
    await this.lifecycleStep({ type: "close" });
    this.worker.terminate();
  }

  private lifecycleStep(request: WriteRequest): Promise<void> {
    assert(this.lifecycle === null, "one open/close at a time");
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.lifecycle = { resolve, reject };
    this.worker.postMessage(request);
    return promise;
  }

  private receive(message: WriteReply): void {
    if (message.type === "opened" || message.type === "closed") {
      this.lifecycle?.resolve();
      this.lifecycle = null;
      return;
    }
    const pending = this.pending.get(message.id);
    assert(pending !== undefined, `reply for unknown transaction ${message.id}`);
    this.pending.delete(message.id);
    if (message.type === "committed") pending.resolve();
    else pending.reject(new Error(message.message));
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.lifecycle?.reject(error);
    this.lifecycle = null;
  }
}
