/**
 * @module The payload of a normal Raft entry: one command for the replicated state machine. A kind
 * byte picks the module that owns the command (kv now; configuration, outbox cursors and topology
 * state later), so the log format grows by adding kinds, never by reinterpreting old ones.
 *
 * Layout: [version u8][kind u8][body]. An empty entry is the leader's no-op (Raft §8).
 */
import { BinaryDecodeError, ByteReader, ByteWriter } from "./binary.ts";
import type { ConfigOp } from "./config-state.ts";
import type { OutboxOp } from "./outbox.ts";

export const commandVersion = 1;

const kindCodes = { "kv-put": 1, "kv-put-batch": 2, "kv-delete": 3, "member-set": 4, "member-remove": 5, config: 6, outbox: 7 } as const;

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
  /** The event outbox (outbox.ts), as JSON for now: a binary form belongs with the events benchmark. */
  | { readonly kind: "outbox"; readonly op: OutboxOp };

export function encodeCommand(command: Command): Uint8Array {
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

/** The envelope only; outbox.ts checks the rest deterministically. */
function parseOutboxOp(text: string): OutboxOp {
  const op = parseJson(text, "outbox op");
  const o = op as { op?: unknown; package?: unknown; events?: unknown; eventKeys?: unknown; epoch?: unknown; through?: unknown; atMs?: unknown; requestKey?: unknown };
  const isCount = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (typeof o !== "object" || o === null || typeof o.package !== "string") throw new BinaryDecodeError("outbox op has no package");
  if (o.op === "accept" && Array.isArray(o.events) && Array.isArray(o.eventKeys) && isCount(o.atMs) && (o.requestKey === null || typeof o.requestKey === "string")) return op as OutboxOp;
  if (o.op === "forwarded" && isCount(o.epoch) && isCount(o.through)) return op as OutboxOp;
  throw new BinaryDecodeError("outbox op is neither a well-formed accept nor forwarded");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BinaryDecodeError(`${what} is not JSON`);
  }
}
