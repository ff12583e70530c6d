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

/** Raft core tuning (server/raft). Ticks are the shell's timer unit, not milliseconds. */
export const raftTuning = {
  /** Default election timeout base; the effective timeout is randomized in [e, 2e) (Raft §5.2). */
  electionTicks: 10,
  /** Default heartbeat interval; must be well below the election timeout (Raft §5.6 timing). */
  heartbeatTicks: 1,
  /** Entries kept behind a snapshot so slightly lagging followers still get `app`, not `snap`. */
  snapshotTrailingEntries: 1024,
  /** Bytes of committed entries handed out in one Ready (at least one entry always). */
  applyBytesMax: 4 * 1024 * 1024,
  /** Longest node id accepted in an encoded ConfChange (bytes of UTF-8). */
  nodeIdBytesMax: 255,
} as const;

assert(raftTuning.heartbeatTicks < raftTuning.electionTicks, "heartbeats must come faster than election timeouts");
assert(raftTuning.applyBytesMax >= raftLimits.appendBytesMax, "a Ready applies at least what one append carries");

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

/** WebAssembly kernels (server/wasm/). */
export const wasmLimits = {
  /** Records in one hashBatch call; the offsets and output tables grow with it. */
  hashBatchRecordsMax: 1_000_000,
  /** Record bytes (sum of lengths) in one hashBatch call; bounds how far linear memory grows. */
  hashBatchDataBytesMax: 64 * 1024 * 1024,
  /** Linear memory may never grow past this (the wasm32 ceiling is 4 GiB). */
  memoryBytesMax: 256 * 1024 * 1024,
} as const;

assert(
  16 + 12 * wasmLimits.hashBatchRecordsMax + 8 + wasmLimits.hashBatchDataBytesMax < wasmLimits.memoryBytesMax - 1024 * 1024,
  "the largest hash batch (header, offsets, outputs, data) must fit linear memory with room for static data",
);
assert(wasmLimits.memoryBytesMax <= 4 * 1024 * 1024 * 1024 - 65536, "wasm32 linear memory ends below 4 GiB");
