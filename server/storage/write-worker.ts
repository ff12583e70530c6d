/**
 * @module The storage write thread: owns the FULL and NORMAL write connections and runs one
 * transaction per request, in arrival order. Keeping the fsync here leaves the node's event loop
 * free to take requests and peer messages meanwhile, which is what batches them into the next Ready.
 */
import { SqlWriter } from "./sql-writer.ts";
import { unpackStatements, type WriteReply, type WriteRequest } from "./write-protocol.ts";

declare const self: Worker;

let writers: { durable: SqlWriter; relaxed: SqlWriter } | null = null;

function reply(message: WriteReply): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<WriteRequest>) => {
  const request = event.data;
  switch (request.type) {
    case "open":
      writers = { durable: new SqlWriter(request.path, "FULL"), relaxed: new SqlWriter(request.path, "NORMAL") };
      reply({ type: "opened" });
      return;
    case "commit":
      try {
        if (writers === null) throw new Error("write thread used before open");
        (request.durable ? writers.durable : writers.relaxed).transaction(unpackStatements(request.statements, request.blobs));
        reply({ type: "committed", id: request.id });
      } catch (error) {
        reply({ type: "failed", id: request.id, message: (error as Error).message });
      }
      return;
    case "close":
      writers?.relaxed.close();
      writers?.durable.close();
      writers = null;
      reply({ type: "closed" });
      return;
  }
};
