/**
 * @module Every limit and tuning figure of opsconn in one place. Relations between them are asserted
 * at load, so a bad edit fails at start-up rather than in production.
 */
import { assert } from "./assert.ts";

/** Raft core limits (see RaftLimits in server/raft/types.ts for the meaning of each). */
export const raftLimits = {
  appendBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 32 * 1024 * 1024,
  uncommittedBytesMax: 64 * 1024 * 1024,
  readIndexPendingMax: 4096,
} as const;

assert(raftLimits.appendBytesMax <= raftLimits.inflightBytesMax, "one append must fit the in-flight byte window");
assert(raftLimits.inflightMessagesMax >= 1, "pipelining needs at least one in-flight message");

/** HTTP limits. */
export const httpLimits = {
  /** Largest request body accepted anywhere (413 beyond). */
  bodyBytesMax: 16 * 1024 * 1024,
} as const;

/** Node process lifecycle. */
export const lifecycle = {
  /** SIGTERM/SIGINT: everything is closed within this bound, or the process exits anyway. */
  shutdownGraceMs: 5000,
} as const;

export const defaultHttpPort = 30005;
