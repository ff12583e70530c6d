/**
 * @module The payload of a normal Raft entry: one command for the replicated state machine. A kind
 * byte picks the module that owns the command (kv now; configuration, outbox cursors and topology
 * state later), so the log format grows by adding kinds, never by reinterpreting old ones.
 *
 * Layout: [version u8][kind u8][body]. An empty entry is the leader's no-op (Raft §8).
 */
import { BinaryDecodeError, ByteReader, ByteWriter } from "./binary.ts";
import type { ConfigOp } from "./config-state.ts";
import type { AcceptBatch, AcceptSegment, OutboxOp } from "./outbox-types.ts";

export const commandVersion = 1;

const kindCodes = { "kv-put": 1, "kv-put-batch": 2, "kv-delete": 3, "member-set": 4, "member-remove": 5, config: 6, outbox: 7 } as const;
/** The outbox's accept batches travel in binary (encodeAcceptBatch); its other ops as JSON (kind 7). */
const outboxAcceptCode = 8;

export interface KvItem {
  readonly key: string;
  readonly value: Uint8Array;
}

export type Command =
  | ({ readonly kind: "kv-put" } & KvItem)
  | { readonly kind: "kv-put-batch"; readonly items: readonly KvItem[] }
  | { readonly kind: "kv-delete"; readonly key: string }
  /** Where a member of the group is reached ("host:port"); Raft membership itself is a ConfChange. */
  | { readonly kind: "member-set"; readonly nodeId: string; readonly address: string }
  | { readonly kind: "member-remove"; readonly nodeId: string }
  /** Configuration (config-state.ts), as JSON: rare, small, and its shape grows with the model. */
  | { readonly kind: "config"; readonly op: ConfigOp }
  /** The event outbox (outbox.ts): accept batches in binary, cursor moves as JSON. */
  | { readonly kind: "outbox"; readonly op: OutboxOp };

export function encodeCommand(command: Command): Uint8Array {
  if (command.kind === "outbox" && command.op.op === "accept-batch") return encodeAcceptBatch(command.op.batch);
  const out = new ByteWriter(sizeHint(command)).u8(commandVersion).u8(kindCodes[command.kind]);
  switch (command.kind) {
    case "kv-put":
      return out.text(command.key).bytes(command.value).finish();
    case "kv-put-batch":
      out.u32(command.items.length);
      for (const item of command.items) out.text(item.key).bytes(item.value);
      return out.finish();
    case "kv-delete":
      return out.text(command.key).finish();
    case "member-set":
      return out.text(command.nodeId).text(command.address).finish();
    case "member-remove":
      return out.text(command.nodeId).finish();
    case "config":
    case "outbox":
      return out.text(JSON.stringify(command.op)).finish();
  }
}

/** Throws BinaryDecodeError for anything malformed; the applier turns that into a failed result. */
/**
 * [package][atMs f64][segments u32] then per segment [requestKey?][events u32] and per event
 * [eventKey?][event bytes]; an optional text is a u8 flag then the text.
 */
function encodeAcceptBatch(batch: AcceptBatch): Uint8Array {
  let bytes = 64 + batch.package.length * 3;
  for (const segment of batch.segments) {
    bytes += 16 + (segment.requestKey?.length ?? 0) * 3;
    for (let i = 0; i < segment.events.length; i++) bytes += 10 + (segment.eventKeys[i]?.length ?? 0) * 3 + segment.events[i]!.length;
  }
  const out = new ByteWriter(bytes).u8(commandVersion).u8(outboxAcceptCode).text(batch.package).f64(batch.atMs).u32(batch.segments.length);
  for (const segment of batch.segments) {
    optionalText(out, segment.requestKey).u32(segment.events.length);
    for (let i = 0; i < segment.events.length; i++) optionalText(out, segment.eventKeys[i] ?? null).bytes(segment.events[i]!);
  }
  return out.finish();
}

function optionalText(out: ByteWriter, value: string | null): ByteWriter {
  return value === null ? out.u8(0) : out.u8(1).text(value);
}

function readOptionalText(reader: ByteReader, what: string): string | null {
  const flag = reader.u8(what);
  if (flag === 0) return null;
  if (flag !== 1) throw new BinaryDecodeError(`${what}: flag ${flag} is neither 0 nor 1`);
  return reader.text(what);
}

/** Events stay bytes (views into the entry): only the holder decodes them, when it forwards. */
function readAcceptBatch(reader: ByteReader): AcceptBatch {
  const packageName = reader.text("package");
  const atMs = reader.f64("accepted at");
  const segmentCount = reader.u32("requests");
  // Each segment takes at least 5 bytes, each event at least 5: claimed counts must fit the input.
  if (segmentCount * 5 > reader.remaining) throw new BinaryDecodeError(`accept claims ${segmentCount} requests in ${reader.remaining} bytes`);
  const segments: AcceptSegment[] = [];
  for (let s = 0; s < segmentCount; s++) {
    const requestKey = readOptionalText(reader, "idempotency key");
    const count = reader.u32("events");
    if (count * 5 > reader.remaining) throw new BinaryDecodeError(`request claims ${count} events in ${reader.remaining} bytes`);
    const eventKeys: Array<string | null> = [];
    const events: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      eventKeys.push(readOptionalText(reader, "event key"));
      events.push(reader.bytes("event"));
    }
    segments.push({ requestKey, eventKeys, events });
  }
  return { package: packageName, atMs, segments };
}

/** An upper bound for the encoded size, so a batch is written into one buffer without regrowing. */
function sizeHint(command: Command): number {
  if (command.kind !== "kv-put-batch") return 64;
  let bytes = 16;
  for (const item of command.items) bytes += 8 + item.key.length * 3 + item.value.length;
  return bytes;
}

export function decodeCommand(data: Uint8Array): Command {
  const reader = new ByteReader(data);
  const version = reader.u8("command version");
  if (version !== commandVersion) throw new BinaryDecodeError(`command version ${version} is not ${commandVersion}`);
  const code = reader.u8("command kind");
  let command: Command;
  if (code === kindCodes["kv-put"]) command = { kind: "kv-put", key: reader.text("key"), value: reader.bytes("value") };
  else if (code === kindCodes["kv-delete"]) command = { kind: "kv-delete", key: reader.text("key") };
  else if (code === kindCodes["member-set"]) command = { kind: "member-set", nodeId: reader.text("node id"), address: reader.text("address") };
  else if (code === kindCodes["member-remove"]) command = { kind: "member-remove", nodeId: reader.text("node id") };
  else if (code === kindCodes.config) command = { kind: "config", op: parseConfigOp(reader.text("config op")) };
  else if (code === kindCodes.outbox) command = { kind: "outbox", op: parseOutboxOp(reader.text("outbox op")) };
  else if (code === outboxAcceptCode) command = { kind: "outbox", op: { op: "accept-batch", batch: readAcceptBatch(reader) } };
  else if (code === kindCodes["kv-put-batch"]) {
    const count = reader.u32("item count");
    if (count * 8 > reader.remaining) throw new BinaryDecodeError(`batch claims ${count} items in ${reader.remaining} bytes`);
    const items = Array.from({ length: count }, () => ({ key: reader.text("key"), value: reader.bytes("value") }));
    command = { kind: "kv-put-batch", items };
  } else throw new BinaryDecodeError(`unknown command kind ${code}`);
  reader.end("command");
  return command;
}

const configOpNames = new Set(["put-model", "deploy", "rollback", "assign", "renew"]);

/** Only the envelope is checked here; config-state.ts checks what each op carries. */
function parseConfigOp(text: string): ConfigOp {
  const op = parseJson(text, "config op");
  if (typeof op !== "object" || op === null || !configOpNames.has((op as { op?: unknown }).op as string)) throw new BinaryDecodeError("config op has no known 'op'");
  return op as ConfigOp;
}

/** The envelope and the types of its fields; outbox.ts checks the rest deterministically. */
function parseOutboxOp(text: string): OutboxOp {
  const op = parseJson(text, "outbox op");
  const o = op as { op?: unknown; package?: unknown; events?: unknown; eventKeys?: unknown; epoch?: unknown; through?: unknown; atMs?: unknown; requestKey?: unknown; seq?: unknown; reason?: unknown; seqs?: unknown };
  const isCount = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (typeof o !== "object" || o === null || typeof o.package !== "string") throw new BinaryDecodeError("outbox op has no package");
  if (o.op === "accept" && Array.isArray(o.events) && Array.isArray(o.eventKeys) && isCount(o.atMs) && (o.requestKey === null || typeof o.requestKey === "string")) return op as OutboxOp;
  if (o.op === "forwarded" && isCount(o.epoch) && isCount(o.through)) return op as OutboxOp;
  if (o.op === "dead-letter" && isCount(o.epoch) && isCount(o.seq) && isCount(o.atMs) && isReason(o.reason)) return op as OutboxOp;
  if (o.op === "requeue" && isCount(o.atMs) && (o.seqs === "all" || (Array.isArray(o.seqs) && o.seqs.every(isCount)))) return op as OutboxOp;
  throw new BinaryDecodeError("outbox op is none of a well-formed accept, forwarded, dead-letter or requeue");
}

function isReason(value: unknown): boolean {
  const r = value as { status?: unknown; message?: unknown } | null;
  return typeof r === "object" && r !== null && typeof r.status === "number" && Number.isSafeInteger(r.status) && r.status >= 0 && typeof r.message === "string";
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BinaryDecodeError(`${what} is not JSON`);
  }
}
