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

/** As held: the event stays in its binary form (event-codec.ts) until a holder forwards it. */
export interface StoredEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  /** Set once more right after an accept: from a view into the entry to the outbox's own copy. */
  bytes: Uint8Array;
  /** The log entry that carried it and its position there; 0 when it came from an event row, a snapshot or a requeue (stored as a row). */
  readonly index: number;
  readonly position: number;
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
  readonly entries: StoredEntry[];
  /** Sequence numbers accepted since the last flush (rows to insert). */
  unwritten: StoredEntry[];
  /** Persisted runs, in seq order (and so in log order); delivered ones leave at the next flush. */
  runs: Run[];
  /** Stored bytes of `entries`: what the package's disk budget counts. */
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
  return { nextSeq, cursor, entries: [], unwritten: [], runs: [], bytes: 0, dirty: false, deadLetters: [], deadLetterBytes: 0, deadLettersDropped, deadUnwritten: new Map(), deadRemoved: [] };
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

/** Copies of `views` in one new buffer (the views may point into larger buffers that must not stay alive). */
export function ownedCopies(views: readonly Uint8Array[]): Uint8Array[] {
  let bytes = 0;
  for (const view of views) bytes += view.length;
  const buffer = new Uint8Array(bytes);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const view of views) {
    buffer.set(view, at);
    out.push(buffer.subarray(at, at + view.length));
    at += view.length;
  }
  return out;
}

/** The events of an accept entry, by position across its requests (binary, or the JSON form of earlier builds). */
export function acceptedEvents(data: Uint8Array): { atMs: number; events: Uint8Array[] } {
  const command = decodeCommand(data);
  assert(command.kind === "outbox" && (command.op.op === "accept" || command.op.op === "accept-batch"), "an outbox run points at an accept entry");
  const op = command.op;
  if (op.op === "accept") return { atMs: op.atMs, events: op.events.map(encodeOprEvent) };
  return { atMs: op.batch.atMs, events: op.batch.segments.flatMap((segment) => [...segment.events]) };
}

/** A row's document: [seq f64][id][acceptedAtMs f64][event bytes]. */
export function storedRow(entry: StoredEntry): Uint8Array {
  return new ByteWriter(32 + entry.id.length + entry.bytes.length).f64(entry.seq).text(entry.id).f64(entry.acceptedAtMs).bytes(entry.bytes).finish();
}

/** Binary rows, or the JSON documents of earlier builds (re-encoded, so an upgrade loses nothing). */
export function fromRow(document: Uint8Array | string): StoredEntry {
  if (typeof document === "string") {
    const legacy = JSON.parse(document) as OutboxEntry;
    return { seq: legacy.seq, id: legacy.id, acceptedAtMs: legacy.acceptedAtMs, bytes: encodeOprEvent(legacy.event), index: 0, position: 0 };
  }
  const reader = new ByteReader(document);
  // A copy, so one event does not keep a whole snapshot image or row page alive.
  const entry = { seq: reader.f64("outbox seq"), id: reader.text("outbox id"), acceptedAtMs: reader.f64("outbox accepted at"), bytes: reader.bytes("outbox event").slice(), index: 0, position: 0 };
  reader.end("outbox row");
  return entry;
}
