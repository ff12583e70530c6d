/**
 * @module The peer-link frame codec: pure functions between `Frame` values and bytes, no I/O.
 *
 * Layout: a 4-byte header — magic 0x4F ('O'), frame format version, RAFT_PROTOCOL_VERSION, frame
 * type — then the body. A `raft` frame batches many Raft messages (batching is what makes a
 * pipelined link fast: one WebSocket send and one syscall per flush, not per message). Integers are
 * varints (wire.ts), node ids and strings length-prefixed UTF-8, entry data length-prefixed bytes,
 * nullable strings flagged by a presence byte. Nonces and HMAC proofs have fixed lengths.
 *
 * Encoding computes the exact size first and writes into one Uint8Array. Decoding validates every
 * field and throws only CodecError; entry, snapshot and app payloads are subarray views into the
 * received frame (no copy). The frame buffer is owned by the receiver (each WebSocket message is a
 * fresh ArrayBuffer), so the views stay valid; keeping one small view keeps its whole frame alive,
 * which is why storage copies entry data when it persists it.
 */
import { assert, unreachable } from "../assert.ts";
import { raftTuning, transportLimits } from "../constants.ts";
import type { ConfState, Entry, EntryType, Message, NodeId, Snapshot } from "../raft/types.ts";
import { RAFT_PROTOCOL_VERSION } from "../raft/types.ts";
import { bytesSize, CodecError, Reader, stringSize, utf8Length, varintSize, Writer } from "./wire.ts";

export { CodecError } from "./wire.ts";

export const FRAME_MAGIC = 0x4f;
/** Bumped when the frame layout (header, frame bodies) changes; message shapes follow RAFT_PROTOCOL_VERSION. */
export const FRAME_VERSION = 2;
export const FRAME_HEADER_BYTES = 4;
/** HMAC-SHA256 output. */
export const PROOF_BYTES = 32;

export type AppKind = "forward-request" | "forward-response";

/** One request or response between the layers above Raft (forwarded proposals, read barriers). */
export interface AppItem {
  readonly kind: AppKind;
  readonly requestId: number;
  readonly body: Uint8Array;
}

export type Frame =
  | { readonly type: "raft"; readonly messages: readonly Message[] }
  /** Dialer → acceptor, first frame: who is calling whom. */
  | { readonly type: "hello"; readonly from: NodeId; readonly to: NodeId }
  /** Acceptor → dialer: the acceptor's fresh nonce. */
  | { readonly type: "challenge"; readonly nonce: Uint8Array }
  /** Dialer → acceptor: the dialer's proof over the acceptor's nonce, and its own nonce. */
  | { readonly type: "auth"; readonly proof: Uint8Array; readonly nonce: Uint8Array }
  /** Acceptor → dialer: the acceptor's proof over both nonces (mutual authentication). */
  | { readonly type: "auth-ok"; readonly proof: Uint8Array }
  | { readonly type: "auth-fail"; readonly reason: string }
  /**
   * Application payloads for the layers above (forwarded proposals, ReadIndex), batched like raft
   * frames: every item queued in one turn of the event loop leaves in one send.
   */
  | { readonly type: "app"; readonly items: readonly AppItem[] }
  /**
   * A slice of one encoded frame larger than messageBytesMax (fragments.ts): `totalBytes` of the
   * whole frame, `offset` of this slice in it. A large frame's fragments go out in order, one large
   * frame after another; other frames may come between them.
   */
  | { readonly type: "fragment"; readonly totalBytes: number; readonly offset: number; readonly chunk: Uint8Array };

export type FrameType = Frame["type"];

const frameTypeCodes: Record<FrameType, number> = { raft: 1, hello: 2, challenge: 3, auth: 4, "auth-ok": 5, "auth-fail": 6, app: 7, fragment: 8 };
const messageTypeCodes: Record<Message["type"], number> = {
  app: 1, "app-resp": 2, vote: 3, "pre-vote": 4, "vote-resp": 5, "pre-vote-resp": 6,
  heartbeat: 7, "heartbeat-resp": 8, snap: 9, "timeout-now": 10,
};
const appKindCodes: Record<AppKind, number> = { "forward-request": 1, "forward-response": 2 };
const entryTypeCodes: Record<EntryType, number> = { normal: 0, "conf-change": 1 };

const frameTypeByCode = invert(frameTypeCodes);
const messageTypeByCode = invert(messageTypeCodes);
const appKindByCode = invert(appKindCodes);
const entryTypeByCode = invert(entryTypeCodes);

function invert<K extends string>(codes: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(codes).map(([name, code]) => [code as number, name as K]));
}

/** Smallest encodings, used to reject counts that cannot fit the bytes left before looping. */
const messageBytesMin = 6; // type, from (len+1), to (len+1), term
const entryBytesMin = 4; // term, index, type, data length
const nodeIdBytesMin = 2;

// ---------------------------------------------------------------------------------------------
// Sizes

export function nodeIdSize(id: NodeId): number {
  return stringSize(id);
}

function entriesSize(entries: readonly Entry[]): number {
  let size = varintSize(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    size += varintSize(entry.term) + varintSize(entry.index) + 1 + bytesSize(entry.data);
  }
  return size;
}

function nullableStringSize(text: string | null): number {
  return text === null ? 1 : 1 + stringSize(text);
}

function nodeListSize(ids: readonly NodeId[]): number {
  let size = varintSize(ids.length);
  for (const id of ids) size += nodeIdSize(id);
  return size;
}

function snapshotSize(snapshot: Snapshot): number {
  const meta = snapshot.meta;
  return varintSize(meta.index) + varintSize(meta.term) + nodeListSize(meta.confState.voters) + nodeListSize(meta.confState.learners) + bytesSize(snapshot.data);
}

/** Encoded bytes of one Raft message inside a raft frame (the transport's queue accounting unit). */
export function raftMessageBytes(message: Message): number {
  const envelope = 1 + nodeIdSize(message.from) + nodeIdSize(message.to) + varintSize(message.term);
  switch (message.type) {
    case "app":
      return envelope + varintSize(message.index) + varintSize(message.logTerm) + varintSize(message.commit) + entriesSize(message.entries);
    case "app-resp":
      return envelope + varintSize(message.index) + 1 + varintSize(message.rejectHint) + varintSize(message.logTerm);
    case "vote":
    case "pre-vote":
      return envelope + varintSize(message.index) + varintSize(message.logTerm) + 1;
    case "vote-resp":
    case "pre-vote-resp":
      return envelope + 1;
    case "heartbeat":
      return envelope + varintSize(message.commit) + nullableStringSize(message.context);
    case "heartbeat-resp":
      return envelope + nullableStringSize(message.context);
    case "snap":
      return envelope + snapshotSize(message.snapshot);
    case "timeout-now":
      return envelope;
    default:
      return unreachable(message);
  }
}

/** Header + message count of a raft frame; add raftMessageBytes of each message for its size. */
export function raftFrameOverheadBytes(messagesCount: number): number {
  return FRAME_HEADER_BYTES + varintSize(messagesCount);
}

/** Reasons are for humans; a long one is cut (3 UTF-8 bytes per UTF-16 unit at most keeps it in bounds). */
export function clampReason(reason: string): string {
  return reason.length <= transportLimits.reasonBytesMax / 3 ? reason : reason.slice(0, Math.floor(transportLimits.reasonBytesMax / 3));
}

function bodySize(frame: Frame): number {
  switch (frame.type) {
    case "raft": {
      let size = varintSize(frame.messages.length);
      for (let i = 0; i < frame.messages.length; i++) size += raftMessageBytes(frame.messages[i]!);
      return size;
    }
    case "hello":
      return nodeIdSize(frame.from) + nodeIdSize(frame.to);
    case "challenge":
      return transportLimits.nonceBytes;
    case "auth":
      return PROOF_BYTES + transportLimits.nonceBytes;
    case "auth-ok":
      return PROOF_BYTES;
    case "auth-fail":
      return stringSize(clampReason(frame.reason));
    case "app": {
      let size = varintSize(frame.items.length);
      for (let i = 0; i < frame.items.length; i++) size += appItemBytes(frame.items[i]!);
      return size;
    }
    case "fragment":
      return varintSize(frame.totalBytes) + varintSize(frame.offset) + frame.chunk.length;
    default:
      return unreachable(frame);
  }
}

/** The encoded size of one app item inside an app frame. */
export function appItemBytes(item: AppItem): number {
  return 1 + varintSize(item.requestId) + bytesSize(item.body);
}

export function frameSize(frame: Frame): number {
  return FRAME_HEADER_BYTES + bodySize(frame);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encodes one frame into a fresh, exactly sized buffer. The caller keeps frames under frameBytesMax. */
export function encodeFrame(frame: Frame): Uint8Array {
  const size = frameSize(frame);
  assert(size <= transportLimits.frameBytesMax, () => `frame of ${size} bytes exceeds frameBytesMax ${transportLimits.frameBytesMax}`);
  const writer = new Writer(size);
  writer.u8(FRAME_MAGIC);
  writer.u8(FRAME_VERSION);
  writer.u8(RAFT_PROTOCOL_VERSION);
  writer.u8(frameTypeCodes[frame.type]);
  writeBody(writer, frame);
  return writer.finish();
}

function writeBody(writer: Writer, frame: Frame): void {
  switch (frame.type) {
    case "raft":
      assert(frame.messages.length <= transportLimits.frameMessagesMax, "too many messages for one frame");
      writer.varint(frame.messages.length);
      for (let i = 0; i < frame.messages.length; i++) writeMessage(writer, frame.messages[i]!);
      return;
    case "hello":
      writeNodeId(writer, frame.from);
      writeNodeId(writer, frame.to);
      return;
    case "challenge":
      writeFixed(writer, frame.nonce, transportLimits.nonceBytes, "nonce");
      return;
    case "auth":
      writeFixed(writer, frame.proof, PROOF_BYTES, "proof");
      writeFixed(writer, frame.nonce, transportLimits.nonceBytes, "nonce");
      return;
    case "auth-ok":
      writeFixed(writer, frame.proof, PROOF_BYTES, "proof");
      return;
    case "auth-fail":
      writer.string(clampReason(frame.reason));
      return;
    case "app":
      assert(frame.items.length <= transportLimits.frameAppItemsMax, "too many app items for one frame");
      writer.varint(frame.items.length);
      for (const item of frame.items) {
        writer.u8(appKindCodes[item.kind]);
        writer.varint(item.requestId);
        writer.bytes(item.body);
      }
      return;
    case "fragment":
      writer.varint(frame.totalBytes);
      writer.varint(frame.offset);
      writer.raw(frame.chunk);
      return;
    default:
      unreachable(frame);
  }
}

function writeFixed(writer: Writer, data: Uint8Array, length: number, what: string): void {
  assert(data.length === length, () => `${what} must be ${length} bytes, got ${data.length}`);
  writer.raw(data);
}

function writeNodeId(writer: Writer, id: NodeId): void {
  const length = utf8Length(id);
  assert(length > 0 && length <= raftTuning.nodeIdBytesMax, () => `node id length out of range: ${JSON.stringify(id)}`);
  writer.string(id, length);
}

function writeNullableString(writer: Writer, text: string | null): void {
  writer.bool(text !== null);
  if (text !== null) writer.string(text);
}

function writeMessage(writer: Writer, message: Message): void {
  writer.u8(messageTypeCodes[message.type]);
  writeNodeId(writer, message.from);
  writeNodeId(writer, message.to);
  writer.varint(message.term);
  switch (message.type) {
    case "app":
      writer.varint(message.index);
      writer.varint(message.logTerm);
      writer.varint(message.commit);
      writeEntries(writer, message.entries);
      return;
    case "app-resp":
      writer.varint(message.index);
      writer.bool(message.reject);
      writer.varint(message.rejectHint);
      writer.varint(message.logTerm);
      return;
    case "vote":
    case "pre-vote":
      writer.varint(message.index);
      writer.varint(message.logTerm);
      writer.bool(message.transfer);
      return;
    case "vote-resp":
    case "pre-vote-resp":
      writer.bool(message.reject);
      return;
    case "heartbeat":
      writer.varint(message.commit);
      writeNullableString(writer, message.context);
      return;
    case "heartbeat-resp":
      writeNullableString(writer, message.context);
      return;
    case "snap":
      writeSnapshot(writer, message.snapshot);
      return;
    case "timeout-now":
      return;
    default:
      unreachable(message);
  }
}

function writeEntries(writer: Writer, entries: readonly Entry[]): void {
  assert(entries.length <= transportLimits.entriesPerMessageMax, "too many entries for one message");
  writer.varint(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    writer.varint(entry.term);
    writer.varint(entry.index);
    writer.u8(entryTypeCodes[entry.type]);
    writer.bytes(entry.data);
  }
}

function writeNodeList(writer: Writer, ids: readonly NodeId[]): void {
  assert(ids.length <= transportLimits.confStateNodesMax, "conf state too large");
  writer.varint(ids.length);
  for (const id of ids) writeNodeId(writer, id);
}

function writeSnapshot(writer: Writer, snapshot: Snapshot): void {
  writer.varint(snapshot.meta.index);
  writer.varint(snapshot.meta.term);
  writeNodeList(writer, snapshot.meta.confState.voters);
  writeNodeList(writer, snapshot.meta.confState.learners);
  writer.bytes(snapshot.data);
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface DecodeOptions {
  /** Refuse larger frames unread (before authentication the bound is much smaller). */
  readonly bytesMax?: number;
}

/** Decodes one frame. Throws CodecError (and nothing else) on any malformed input. */
export function decodeFrame(bytes: Uint8Array, options: DecodeOptions = {}): Frame {
  const bytesMax = Math.min(options.bytesMax ?? transportLimits.frameBytesMax, transportLimits.frameBytesMax);
  if (!(bytes instanceof Uint8Array)) throw new CodecError("frame is not a byte array");
  if (bytes.length > bytesMax) throw new CodecError(`frame of ${bytes.length} bytes exceeds the limit of ${bytesMax}`);
  const reader = new Reader(bytes);
  const magic = reader.u8("magic");
  if (magic !== FRAME_MAGIC) throw new CodecError(`bad magic byte 0x${magic.toString(16)} (expected 0x${FRAME_MAGIC.toString(16)})`);
  const version = reader.u8("frame version");
  if (version !== FRAME_VERSION) throw new CodecError(`unsupported frame version ${version} (this node speaks ${FRAME_VERSION})`);
  const protocol = reader.u8("raft protocol version");
  if (protocol !== RAFT_PROTOCOL_VERSION) {
    throw new CodecError(`unsupported raft protocol version ${protocol} (this node speaks ${RAFT_PROTOCOL_VERSION})`);
  }
  const code = reader.u8("frame type");
  const type = frameTypeByCode.get(code);
  if (type === undefined) throw new CodecError(`unknown frame type ${code}`);
  const frame = readBody(reader, type);
  reader.expectEnd(`${type} frame`);
  return frame;
}

function readBody(reader: Reader, type: FrameType): Frame {
  switch (type) {
    case "raft":
      return { type, messages: readMessages(reader) };
    case "hello":
      return { type, from: readNodeId(reader, "hello.from"), to: readNodeId(reader, "hello.to") };
    case "challenge":
      return { type, nonce: reader.raw(transportLimits.nonceBytes, "challenge.nonce") };
    case "auth":
      return { type, proof: reader.raw(PROOF_BYTES, "auth.proof"), nonce: reader.raw(transportLimits.nonceBytes, "auth.nonce") };
    case "auth-ok":
      return { type, proof: reader.raw(PROOF_BYTES, "auth-ok.proof") };
    case "auth-fail":
      return { type, reason: reader.string("auth-fail.reason", transportLimits.reasonBytesMax) };
    case "app":
      return { type, items: readAppItems(reader) };
    case "fragment": {
      const totalBytes = reader.varint("fragment.totalBytes");
      const offset = reader.varint("fragment.offset");
      return { type, totalBytes, offset, chunk: reader.raw(reader.remaining, "fragment.chunk") };
    }
    default:
      return unreachable(type);
  }
}

function readAppItems(reader: Reader): AppItem[] {
  const count = reader.varint("app.count");
  if (count > transportLimits.frameAppItemsMax) throw new CodecError(`app frame with ${count} items exceeds ${transportLimits.frameAppItemsMax}`);
  const items: AppItem[] = [];
  for (let i = 0; i < count; i++) {
    const kindCode = reader.u8("app.kind");
    const kind = appKindByCode.get(kindCode);
    if (kind === undefined) throw new CodecError(`unknown app kind ${kindCode}`);
    const requestId = reader.varint("app.requestId");
    items.push({ kind, requestId, body: reader.bytes("app.body", transportLimits.frameBytesMax) });
  }
  return items;
}

function readNodeId(reader: Reader, what: string): NodeId {
  return reader.string(what, raftTuning.nodeIdBytesMax, 1);
}

function readNullableString(reader: Reader, what: string): string | null {
  return reader.bool(`${what} present`) ? reader.string(what, transportLimits.contextBytesMax) : null;
}

function readMessages(reader: Reader): Message[] {
  const count = reader.length("message count", transportLimits.frameMessagesMax, messageBytesMin);
  const messages: Message[] = new Array<Message>(count);
  for (let i = 0; i < count; i++) messages[i] = readMessage(reader);
  return messages;
}

function readMessage(reader: Reader): Message {
  const code = reader.u8("message type");
  const type = messageTypeByCode.get(code);
  if (type === undefined) throw new CodecError(`unknown message type ${code}`);
  const from = readNodeId(reader, `${type}.from`);
  const to = readNodeId(reader, `${type}.to`);
  const term = reader.varint(`${type}.term`);
  switch (type) {
    case "app": {
      const index = reader.varint("app.index");
      const logTerm = reader.varint("app.logTerm");
      const commit = reader.varint("app.commit");
      return { type, from, to, term, index, logTerm, commit, entries: readEntries(reader) };
    }
    case "app-resp": {
      const index = reader.varint("app-resp.index");
      const reject = reader.bool("app-resp.reject");
      const rejectHint = reader.varint("app-resp.rejectHint");
      return { type, from, to, term, index, reject, rejectHint, logTerm: reader.varint("app-resp.logTerm") };
    }
    case "vote":
    case "pre-vote": {
      const index = reader.varint(`${type}.index`);
      const logTerm = reader.varint(`${type}.logTerm`);
      return { type, from, to, term, index, logTerm, transfer: reader.bool(`${type}.transfer`) };
    }
    case "vote-resp":
    case "pre-vote-resp":
      return { type, from, to, term, reject: reader.bool(`${type}.reject`) };
    case "heartbeat": {
      const commit = reader.varint("heartbeat.commit");
      return { type, from, to, term, commit, context: readNullableString(reader, "heartbeat.context") };
    }
    case "heartbeat-resp":
      return { type, from, to, term, context: readNullableString(reader, "heartbeat-resp.context") };
    case "snap":
      return { type, from, to, term, snapshot: readSnapshot(reader) };
    case "timeout-now":
      return { type, from, to, term };
    default:
      return unreachable(type);
  }
}

function readEntries(reader: Reader): Entry[] {
  const count = reader.length("entry count", transportLimits.entriesPerMessageMax, entryBytesMin);
  const entries: Entry[] = new Array<Entry>(count);
  for (let i = 0; i < count; i++) {
    const term = reader.varint("entry.term");
    const index = reader.varint("entry.index");
    const code = reader.u8("entry.type");
    const type = entryTypeByCode.get(code);
    if (type === undefined) throw new CodecError(`unknown entry type ${code}`);
    entries[i] = { term, index, type, data: reader.bytes("entry.data", transportLimits.frameBytesMax) };
  }
  return entries;
}

function readNodeList(reader: Reader, what: string): NodeId[] {
  const count = reader.length(`${what} count`, transportLimits.confStateNodesMax, nodeIdBytesMin);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(readNodeId(reader, what));
  return ids;
}

function readSnapshot(reader: Reader): Snapshot {
  const index = reader.varint("snap.meta.index");
  const term = reader.varint("snap.meta.term");
  const confState: ConfState = { voters: readNodeList(reader, "snap.voters"), learners: readNodeList(reader, "snap.learners") };
  return { meta: { index, term, confState }, data: reader.bytes("snap.data", transportLimits.frameBytesMax) };
}
