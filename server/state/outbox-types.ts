/**
 * @module The outbox's public shapes (server/state/outbox.ts): the ops the log carries, what they
 * produce, what the forwarder reads, and the durable rows. Types only.
 */
import type { OprEvent } from "../connector/events/event-record.ts";
import type { PackageAssignment } from "./config-state.ts";

/** An undelivered event as the forwarder sees it: its stored bytes, and the event decoded from them. */
export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  /** The event's binary form (event-codec.ts): the outbox's own memory, to read, never to write. */
  readonly bytes: Uint8Array;
  readonly event: OprEvent;
}

/** Why the target refused an event: its status (HTTP) and the reason it gave, an excerpt of its answer. */
export interface DeadLetterReason {
  readonly status: number;
  readonly message: string;
}

/** A dead letter as the API shows it. */
export interface DeadLetterEntry {
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly event: OprEvent;
  readonly reason: DeadLetterReason;
  /** The log index of the move, and the holder's clock when it proposed it. */
  readonly index: number;
  readonly atMs: number;
}

/** One listener request inside an accept batch: all or nothing on its own. */
export interface AcceptSegment {
  /** The request's Idempotency-Key header, or null. */
  readonly requestKey: string | null;
  /** Per event (the source's source_event_id), or null; same length as `events`. */
  readonly eventKeys: ReadonlyArray<string | null>;
  /** Each event in its binary form (event-codec.ts). */
  readonly events: readonly Uint8Array[];
}

/** Concurrent listener requests for one package, coalesced into one log entry. */
export interface AcceptBatch {
  readonly package: string;
  readonly atMs: number;
  readonly segments: readonly AcceptSegment[];
}

export type OutboxOp =
  /** One request, events as objects: the JSON form (command kind 7) of earlier builds, still applied. */
  | {
      readonly op: "accept";
      readonly package: string;
      readonly atMs: number;
      readonly requestKey: string | null;
      readonly eventKeys: ReadonlyArray<string | null>;
      readonly events: readonly OprEvent[];
    }
  /** The binary form (command kind 8): many requests in one entry. */
  | { readonly op: "accept-batch"; readonly batch: AcceptBatch }
  | { readonly op: "forwarded"; readonly package: string; readonly epoch: number; readonly through: number }
  /** The holder moves the first undelivered event (seq = cursor + 1), refused by the target on its own, to the dead letters. */
  | { readonly op: "dead-letter"; readonly package: string; readonly epoch: number; readonly seq: number; readonly atMs: number; readonly reason: DeadLetterReason }
  /** Dead letters (by seq, or all) back into the outbox as new events. */
  | { readonly op: "requeue"; readonly package: string; readonly atMs: number; readonly seqs: readonly number[] | "all" };

export type SegmentResult = { readonly ok: true; readonly ids: readonly string[]; readonly duplicates: number } | { readonly ok: false; readonly error: string };

export type BatchResult = { readonly ok: true; readonly segments: readonly SegmentResult[] } | { readonly ok: false; readonly error: string };

/** Each requeued dead letter (`from`, its old seq) with its new seq and id, in seq order. */
export type RequeueResult = { readonly ok: true; readonly requeued: ReadonlyArray<{ readonly from: number; readonly seq: number; readonly id: string }> } | { readonly ok: false; readonly error: string };

export type OutboxResult = SegmentResult | BatchResult | RequeueResult;

export interface OutboxContext {
  readonly holders: ReadonlyMap<string, PackageAssignment>;
  /** The packages of the current deployment (events for any other would never be forwarded). */
  readonly deployed: ReadonlySet<string>;
  /** Disk budget per package, in bytes (the deployment's outboxBytesMax); absent: the default. */
  readonly budgetBytes?: ReadonlyMap<string, number>;
}

/** The durable form: table rows, and the same in snapshots. A row's document is binary (`storedRow`), or JSON from earlier builds. */
export interface OutboxRows {
  /** `deadLettersDropped` is absent in tables and snapshots of earlier builds (0). */
  readonly packages: ReadonlyArray<{ readonly name: string; readonly nextSeq: number; readonly cursor: number; readonly deadLettersDropped?: number }>;
  readonly entries: ReadonlyArray<{ readonly name: string; readonly document: Uint8Array | string }>;
  readonly keys: ReadonlyArray<{ readonly ord: number; readonly key: string; readonly ids: string }>;
  /** Runs (tables only; snapshots carry every event as a row). */
  readonly runs?: ReadonlyArray<{ readonly name: string; readonly firstSeq: number; readonly count: number; readonly index: number; readonly position: number }>;
  /** Absent in tables and snapshots of earlier builds. */
  readonly deadLetters?: readonly DeadLetterRow[];
}

export interface DeadLetterRow {
  readonly name: string;
  readonly seq: number;
  readonly id: string;
  readonly acceptedAtMs: number;
  readonly event: Uint8Array;
  readonly status: number;
  readonly reason: string;
  readonly index: number;
  readonly atMs: number;
}
