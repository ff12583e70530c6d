/**
 * @module How the outbox (server/state/outbox.ts) holds events and writes them: the in-memory
 * structures per package, the SQL it flushes, and the binary row form of an event (also used in
 * snapshots), with the JSON documents of earlier builds still read.
 */
import { assert } from "../assert.ts";
import { encodeOprEvent } from "../connector/events/event-codec.ts";
import { ByteReader, ByteWriter } from "./binary.ts";
import { decodeCommand } from "./command-codec.ts";
import type { MultiRowShape } from "../storage/multi-row.ts";
import type { DeadLetterReason, OutboxEntry } from "./outbox-types.ts";

/**
 * As held: undelivered events with consecutive seqs, kept back to back in one buffer in their binary
 * form (event-codec.ts) until a holder forwards them. One object per accept entry, not per event:
 * per-event objects (an entry, its id, a view) were most of what every node's heap held under a
 * backlog, and their allocation and marking showed on all three nodes.
 */
export interface Chunk {
  readonly firstSeq: number;
  readonly acceptedAtMs: number;
  /** The outbox's own copy (never a view into a log entry or a transport frame, which must not stay pinned). */
  readonly buffer: Uint8Array;
  /** Event i is buffer[starts[i], starts[i + 1]); length = events + 1. */
  readonly starts: Uint32Array;
  /** The log entry that carried the events and the first one's position there; 0 when they must be stored as rows (rows, snapshots, requeues). */
  readonly index: number;
  readonly position: number;
  /** Event i's id is `${index}.${position + i}`, unless the ids are given one by one (events stored as rows). */
  readonly ids: readonly string[] | null;
}

/** One held event, read out of its chunk. */
export interface HeldEvent {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly bytes: Uint8Array;
}

export function chunkEvents(chunk: Chunk): number {
  return chunk.starts.length - 1;
}

/** Where in the chunk the events after `seq` begin (0 when the chunk starts after it). */
export function chunkIndexAfter(chunk: Chunk, seq: number): number {
  return Math.max(0, seq + 1 - chunk.firstSeq);
}

/** Bytes of events [from, to) of the chunk. */
export function chunkBytes(chunk: Chunk, from: number, to: number): number {
  return chunk.starts[to]! - chunk.starts[from]!;
}

export function chunkEventBytes(chunk: Chunk, i: number): Uint8Array {
  return chunk.buffer.subarray(chunk.starts[i], chunk.starts[i + 1]);
}

export function chunkEventId(chunk: Chunk, i: number): string {
  return chunk.ids === null ? `${chunk.index}.${chunk.position + i}` : chunk.ids[i]!;
}

export function heldEvent(chunk: Chunk, i: number): HeldEvent {
  return { seq: chunk.firstSeq + i, id: chunkEventId(chunk, i), acceptedAtMs: chunk.acceptedAtMs, bytes: chunkEventBytes(chunk, i) };
}

/** A chunk of `events` copied into one new buffer (they may be views into buffers that must not stay alive). */
export function newChunk(events: readonly Uint8Array[], at: { firstSeq: number; acceptedAtMs: number; index: number; position: number; ids?: readonly string[] }): Chunk {
  assert(events.length > 0, "a chunk holds at least one event");
  assert(at.ids === undefined || at.ids.length === events.length, "one id per event");
  const starts = new Uint32Array(events.length + 1);
  for (let i = 0; i < events.length; i++) starts[i + 1] = starts[i]! + events[i]!.length;
  const buffer = new Uint8Array(starts[events.length]!);
  for (let i = 0; i < events.length; i++) buffer.set(events[i]!, starts[i]);
  return { firstSeq: at.firstSeq, acceptedAtMs: at.acceptedAtMs, buffer, starts, index: at.index, position: at.position, ids: at.ids ?? null };
}

/** As held: the event in its binary form, like an outbox entry. */
export interface StoredDeadLetter {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly bytes: Uint8Array;
  readonly reason: DeadLetterReason;
  readonly index: number;
  readonly atMs: number;
}

/** Undelivered events persisted as a pointer into their log entry: positions [position, position + count) hold seqs [firstSeq, ...). */
export interface Run {
  readonly firstSeq: number;
  readonly count: number;
  readonly index: number;
  readonly position: number;
}

export interface PackageOutbox {
  nextSeq: number;
  /** Delivered through this sequence number. */
  cursor: number;
  /** The events after the cursor (nextSeq - 1 - cursor of them), in seq order without a gap; the first chunk may start at or before the cursor (its delivered events stay until the whole chunk is delivered). */
  chunks: Chunk[];
  /** Chunks accepted since the last flush (rows or runs to insert). */
  unwritten: Chunk[];
  /** Persisted runs, in seq order (and so in log order); delivered ones leave at the next flush. */
  runs: Run[];
  /** Stored bytes of the held events: what the package's disk budget counts. */
  bytes: number;
  dirty: boolean;
  /** In seq order (each was the first undelivered event when it moved); at most deadLettersPerPackageMax, and deadLetterBytesMax but for the newest. */
  deadLetters: StoredDeadLetter[];
  /** Stored event bytes of `deadLetters`. */
  deadLetterBytes: number;
  /** Dead letters dropped past the bound, oldest first, since the package's first event. */
  deadLettersDropped: number;
  /** Dead letters added since the last flush (rows to insert), by seq. */
  readonly deadUnwritten: Map<number, StoredDeadLetter>;
  /** Seqs of written dead letters that left (requeued or dropped): rows to delete. */
  deadRemoved: number[];
}

export function emptyBox(nextSeq: number, cursor: number, deadLettersDropped: number): PackageOutbox {
  return { nextSeq, cursor, chunks: [], unwritten: [], runs: [], bytes: 0, dirty: false, deadLetters: [], deadLetterBytes: 0, deadLettersDropped, deadUnwritten: new Map(), deadRemoved: [] };
}

export const insertEntries: MultiRowShape = { head: "INSERT INTO outbox_events (package, seq, document) VALUES", columns: 3, tail: "" };

export const insertRuns: MultiRowShape = { head: "INSERT INTO outbox_runs (package, first_seq, count, log_index, position) VALUES", columns: 5, tail: "" };

export const deleteRunsThrough = "DELETE FROM outbox_runs WHERE package = ? AND first_seq + count - 1 <= ?";

export const deleteRun = "DELETE FROM outbox_runs WHERE package = ? AND first_seq = ?";

export const deleteThrough = "DELETE FROM outbox_events WHERE package = ? AND seq <= ?";

export const insertKey = "INSERT INTO outbox_keys (ord, key, ids) VALUES (?, ?, ?)";

export const deleteKeysBefore = "DELETE FROM outbox_keys WHERE ord < ?";

export const upsertPackage =
  "INSERT INTO outbox_packages (package, next_seq, cursor, dead_letters_dropped) VALUES (?, ?, ?, ?) ON CONFLICT(package) DO UPDATE SET next_seq = excluded.next_seq, cursor = excluded.cursor, dead_letters_dropped = excluded.dead_letters_dropped";

export const insertDeadLetters: MultiRowShape = { head: "INSERT INTO outbox_dead_letters (package, seq, id, accepted_at_ms, event, status, reason, log_index, at_ms) VALUES", columns: 9, tail: "" };

/** Row values (SQLite 3.15+): the pairs to delete, many per statement. */
export const deleteDeadLetters: MultiRowShape = { head: "DELETE FROM outbox_dead_letters WHERE (package, seq) IN (VALUES", columns: 2, tail: ")" };

/** The events of an accept entry, by position across its requests (binary, or the JSON form of earlier builds). */
export function acceptedEvents(data: Uint8Array): { atMs: number; events: Uint8Array[] } {
  const command = decodeCommand(data);
  assert(command.kind === "outbox" && (command.op.op === "accept" || command.op.op === "accept-batch"), "an outbox run points at an accept entry");
  const op = command.op;
  if (op.op === "accept") return { atMs: op.atMs, events: op.events.map(encodeOprEvent) };
  return { atMs: op.batch.atMs, events: op.batch.segments.flatMap((segment) => [...segment.events]) };
}

/** A row's document: [seq f64][id][acceptedAtMs f64][event bytes]. */
export function storedRow(event: HeldEvent): Uint8Array {
  return new ByteWriter(32 + event.id.length + event.bytes.length).f64(event.seq).text(event.id).f64(event.acceptedAtMs).bytes(event.bytes).finish();
}

/** Binary rows, or the JSON documents of earlier builds (re-encoded, so an upgrade loses nothing). */
export function fromRow(document: Uint8Array | string): HeldEvent {
  if (typeof document === "string") {
    const legacy = JSON.parse(document) as OutboxEntry;
    return { seq: legacy.seq, id: legacy.id, acceptedAtMs: legacy.acceptedAtMs, bytes: encodeOprEvent(legacy.event) };
  }
  const reader = new ByteReader(document);
  // A view: the caller copies the events it keeps into chunks of their own.
  const event = { seq: reader.f64("outbox seq"), id: reader.text("outbox id"), acceptedAtMs: reader.f64("outbox accepted at"), bytes: reader.bytes("outbox event") };
  reader.end("outbox row");
  return event;
}
