/**
 * @module Codec tests: every Message variant and frame type round-trips (table-driven, then 1000
 * seeded random messages); malformed input — every truncation, every single-byte corruption, bad
 * versions, oversized lengths, garbage — yields CodecError and never any other exception.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { transportLimits } from "../../server/constants.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { RAFT_PROTOCOL_VERSION, type Entry, type Message, type Rng } from "../../server/raft/types.ts";
import {
  CodecError,
  decodeFrame,
  encodeFrame,
  FRAME_MAGIC,
  FRAME_VERSION,
  frameSize,
  PROOF_BYTES,
  raftMessageBytes,
  type Frame,
} from "../../server/transport/codec.ts";
import { varintSize, Writer } from "../../server/transport/wire.ts";

// Generous: the CI box has two cores that other suites may be saturating; waits are bounded anyway.
setDefaultTimeout(30_000);

const bytes = (...values: number[]) => new Uint8Array(values);
const filled = (length: number, value: number) => new Uint8Array(length).fill(value);
const big = Number.MAX_SAFE_INTEGER;

const entries: Entry[] = [
  { term: 1, index: 1, type: "conf-change", data: bytes(1, 2, 3) },
  { term: 2 ** 40, index: big, type: "normal", data: new Uint8Array(0) },
  { term: 3, index: 128, type: "normal", data: filled(300, 7) },
];

const messageCases: [string, Message][] = [
  ["app with entries", { type: "app", from: "a", to: "b", term: 5, index: 4, logTerm: 4, commit: 3, entries }],
  ["app heartbeat-like (no entries)", { type: "app", from: "a", to: "b", term: 0, index: 0, logTerm: 0, commit: 0, entries: [] }],
  ["app-resp accept", { type: "app-resp", from: "b", to: "a", term: 5, index: 7, reject: false, rejectHint: 0, logTerm: 0 }],
  ["app-resp reject, huge numbers", { type: "app-resp", from: "b", to: "a", term: big, index: big, reject: true, rejectHint: 2 ** 33, logTerm: 2 ** 52 }],
  ["vote", { type: "vote", from: "c", to: "a", term: 9, index: 100, logTerm: 8, transfer: false }],
  ["pre-vote with transfer", { type: "pre-vote", from: "c", to: "a", term: 10, index: 100, logTerm: 8, transfer: true }],
  ["vote-resp granted", { type: "vote-resp", from: "a", to: "c", term: 9, reject: false }],
  ["pre-vote-resp rejected", { type: "pre-vote-resp", from: "a", to: "c", term: 10, reject: true }],
  ["heartbeat without context", { type: "heartbeat", from: "a", to: "b", term: 3, commit: 12, context: null }],
  ["heartbeat with context", { type: "heartbeat", from: "a", to: "b", term: 3, commit: 12, context: "read-42" }],
  ["heartbeat with empty context", { type: "heartbeat", from: "a", to: "b", term: 3, commit: 12, context: "" }],
  ["heartbeat-resp with context", { type: "heartbeat-resp", from: "b", to: "a", term: 3, context: "read-42" }],
  ["heartbeat-resp without context", { type: "heartbeat-resp", from: "b", to: "a", term: 3, context: null }],
  [
    "snap",
    {
      type: "snap", from: "a", to: "d", term: 4,
      snapshot: { meta: { index: 1000, term: 4, confState: { voters: ["a", "b", "c"], learners: ["d"] } }, data: filled(5000, 9) },
    },
  ],
  ["snap, empty conf state", { type: "snap", from: "a", to: "d", term: 4, snapshot: { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: bytes() } }],
  ["timeout-now", { type: "timeout-now", from: "a", to: "b", term: 7 }],
  ["unicode node ids", { type: "timeout-now", from: "nœud-α", to: "узел-😀", term: 1 }],
];

const frameCases: [string, Frame][] = [
  ["raft batch of every variant", { type: "raft", messages: messageCases.map(([, m]) => m) }],
  ["raft, empty batch", { type: "raft", messages: [] }],
  ["hello", { type: "hello", from: "node-1", to: "node-2" }],
  ["challenge", { type: "challenge", nonce: filled(transportLimits.nonceBytes, 0xab) }],
  ["auth", { type: "auth", proof: filled(PROOF_BYTES, 1), nonce: filled(transportLimits.nonceBytes, 2) }],
  ["auth-ok", { type: "auth-ok", proof: filled(PROOF_BYTES, 3) }],
  ["auth-fail", { type: "auth-fail", reason: "node-9 is not a member" }],
  ["app forward-request", { type: "app", items: [{ kind: "forward-request", requestId: 1, body: bytes(1, 2, 3) }] }],
  ["app forward-response, big id, empty body", { type: "app", items: [{ kind: "forward-response", requestId: big, body: bytes() }] }],
  ["app, several items of both kinds", { type: "app", items: [{ kind: "forward-request", requestId: 7, body: bytes(9) }, { kind: "forward-response", requestId: 3, body: bytes(1, 2) }] }],
  ["app, no items", { type: "app", items: [] }],
];

function roundTrip(frame: Frame): Frame {
  const encoded = encodeFrame(frame);
  expect(encoded.length).toBe(frameSize(frame));
  return decodeFrame(encoded);
}

/** Runs fn and reports how it failed: "ok", "codec", or the foreign error (a test failure). */
function outcome(fn: () => unknown): "ok" | "codec" | unknown {
  try {
    fn();
    return "ok";
  } catch (error) {
    return error instanceof CodecError ? "codec" : error;
  }
}

describe("codec round trip", () => {
  test.each(messageCases)("message: %s", (_name, message) => {
    expect(roundTrip({ type: "raft", messages: [message] })).toEqual({ type: "raft", messages: [message] });
  });

  test.each(frameCases)("frame: %s", (_name, frame) => {
    expect(roundTrip(frame)).toEqual(frame);
  });

  test("raftMessageBytes sums to the frame size", () => {
    const messages = messageCases.map(([, m]) => m);
    const sum = messages.reduce((total, m) => total + raftMessageBytes(m), 0);
    expect(frameSize({ type: "raft", messages })).toBe(4 + varintSize(messages.length) + sum);
  });

  test("decoded entry data is a view into the frame, not a copy", () => {
    const encoded = encodeFrame({ type: "raft", messages: [messageCases[0]![1]] });
    const decoded = decodeFrame(encoded);
    if (decoded.type !== "raft" || decoded.messages[0]?.type !== "app") throw new Error("unexpected decode");
    expect(decoded.messages[0].entries[0]!.data.buffer).toBe(encoded.buffer);
  });

  test("a long auth-fail reason is cut to the limit, not refused", () => {
    const decoded = roundTrip({ type: "auth-fail", reason: "x".repeat(10_000) });
    expect(decoded.type === "auth-fail" && decoded.reason.length).toBeLessThanOrEqual(transportLimits.reasonBytesMax);
  });

  test("1000 seeded random messages round-trip in one frame", () => {
    const rng = seededRng(0x7a7a);
    const messages = Array.from({ length: 1000 }, () => randomMessage(rng));
    expect(roundTrip({ type: "raft", messages })).toEqual({ type: "raft", messages });
  });

  test("1000 random messages round-trip one per frame", () => {
    const rng = seededRng(0xbeef);
    for (let i = 0; i < 1000; i++) {
      const message = randomMessage(rng);
      expect(roundTrip({ type: "raft", messages: [message] })).toEqual({ type: "raft", messages: [message] });
    }
  });
});

describe("codec rejects malformed input with CodecError only", () => {
  const valid = encodeFrame(frameCases[0]![1]);

  test("every truncation of a valid frame", () => {
    for (let length = 0; length < valid.length; length++) {
      const result = outcome(() => decodeFrame(valid.subarray(0, length)));
      if (result !== "codec") throw new Error(`truncated at ${length}: ${String(result)}`);
    }
  });

  test("every truncation of every frame type", () => {
    for (const [name, frame] of frameCases) {
      const encoded = encodeFrame(frame);
      for (let length = 0; length < encoded.length; length++) {
        const result = outcome(() => decodeFrame(encoded.subarray(0, length)));
        if (result !== "codec") throw new Error(`${name} truncated at ${length}: ${String(result)}`);
      }
    }
  });

  test("every single-byte corruption decodes or throws CodecError", () => {
    for (let offset = 0; offset < valid.length; offset++) {
      for (const value of [0x00, 0x7f, 0x80, 0xff, valid[offset]! ^ 0x01]) {
        const copy = valid.slice();
        copy[offset] = value;
        const result = outcome(() => decodeFrame(copy));
        if (result !== "ok" && result !== "codec") throw new Error(`offset ${offset} = ${value}: ${String(result)}`);
      }
    }
  });

  test("trailing bytes", () => {
    const longer = new Uint8Array(valid.length + 1);
    longer.set(valid);
    expect(() => decodeFrame(longer)).toThrow(CodecError);
  });

  test("unknown frame version names both versions", () => {
    const copy = valid.slice();
    copy[1] = FRAME_VERSION + 1;
    expect(() => decodeFrame(copy)).toThrow(`unsupported frame version ${FRAME_VERSION + 1} (this node speaks ${FRAME_VERSION})`);
  });

  test("unknown raft protocol version names both versions", () => {
    const copy = valid.slice();
    copy[2] = RAFT_PROTOCOL_VERSION + 1;
    expect(() => decodeFrame(copy)).toThrow(`raft protocol version ${RAFT_PROTOCOL_VERSION + 1} (this node speaks ${RAFT_PROTOCOL_VERSION})`);
  });

  const header = [FRAME_MAGIC, FRAME_VERSION, RAFT_PROTOCOL_VERSION];
  const malformed: [string, Uint8Array, string][] = [
    ["empty", bytes(), "truncated"],
    ["bad magic", bytes(0x00, FRAME_VERSION, RAFT_PROTOCOL_VERSION, 1, 0), "bad magic"],
    ["unknown frame type", bytes(...header, 99), "unknown frame type 99"],
    ["message count beyond the limit", bytes(...header, 1, 0xff, 0xff, 0xff, 0x7f), "exceeds the limit"],
    ["message count beyond the bytes left", bytes(...header, 1, 100, 1), "truncated"],
    ["unknown message type", bytes(...header, 1, 1, 42, 1, 0x61, 1, 0x62, 0), "unknown message type 42"],
    ["empty node id", bytes(...header, 2, 0, 1, 0x62), "at least 1"],
    ["empty node id inside a message", bytes(...header, 1, 1, 10, 0, 1, 0x62, 0, 0), "at least 1"],
    ["node id longer than the limit", bytes(...header, 2, 0x80, 0x02, 0x61), "exceeds the limit"],
    ["varint longer than 8 bytes", bytes(...header, 1, 1, 10, 1, 0x61, 1, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "longer than 8"],
    ["varint above 2^53", bytes(...header, 1, 1, 10, 1, 0x61, 1, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "exceeds 2^53"],
    ["non-minimal varint", bytes(...header, 1, 1, 10, 1, 0x61, 1, 0x62, 0x80, 0x00), "non-minimal"],
    ["boolean byte 2", bytes(...header, 1, 1, 5, 1, 0x61, 1, 0x62, 0, 2), "neither 0 nor 1"],
    ["invalid UTF-8 node id", bytes(...header, 2, 1, 0xff, 1, 0x62), "invalid UTF-8"],
    ["entry data length beyond the frame", bytes(...header, 1, 1, 1, 1, 0x61, 1, 0x62, 0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0x7f), "truncated"],
    ["unknown entry type", bytes(...header, 1, 1, 1, 1, 0x61, 1, 0x62, 0, 0, 0, 0, 1, 0, 0, 7, 0), "unknown entry type 7"],
    ["unknown app kind", bytes(...header, 7, 1, 9, 1, 0), "unknown app kind 9"],
    ["app item count beyond the limit", bytes(...header, 7, 0x81, 0x80, 0x01), "exceeds 8192"],
    ["short nonce", bytes(...header, 3, 1, 2, 3), "truncated"],
    ["oversized app body length", bytes(...header, 7, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f), "exceeds the limit"],
  ];

  test.each(malformed)("%s", (_name, input, message) => {
    expect(() => decodeFrame(input)).toThrow(CodecError);
    expect(() => decodeFrame(input)).toThrow(message);
  });

  test("frames beyond frameBytesMax are refused unread", () => {
    expect(() => decodeFrame(new Uint8Array(transportLimits.frameBytesMax + 1))).toThrow("exceeds the limit");
  });

  test("the handshake bound applies when asked", () => {
    const frame = encodeFrame({ type: "app", items: [{ kind: "forward-request", requestId: 1, body: new Uint8Array(2000) }] });
    expect(() => decodeFrame(frame, { bytesMax: transportLimits.handshakeFrameBytesMax })).toThrow(CodecError);
  });

  test("seeded garbage never throws anything but CodecError", () => {
    const rng = seededRng(0x9a7b);
    for (let i = 0; i < 20_000; i++) {
      const input = randomBytes(rng, rng.nextInt(64));
      // Half the inputs get a valid header so the body decoders see garbage too.
      if (i % 2 === 0 && input.length >= 4) input.set([FRAME_MAGIC, FRAME_VERSION, RAFT_PROTOCOL_VERSION, 1 + rng.nextInt(7)]);
      const result = outcome(() => decodeFrame(input));
      if (result !== "ok" && result !== "codec") throw new Error(`garbage ${Array.from(input)}: ${String(result)}`);
    }
  });
});

describe("wire writer", () => {
  test("varint sizes at the 7-bit boundaries", () => {
    const cases: [number, number][] = [[0, 1], [127, 1], [128, 2], [2 ** 14 - 1, 2], [2 ** 14, 3], [2 ** 32, 5], [big, 8]];
    for (const [value, size] of cases) {
      expect(varintSize(value)).toBe(size);
      const writer = new Writer(size);
      writer.varint(value);
      expect(writer.finish().length).toBe(size);
    }
  });
});

// ---------------------------------------------------------------------------------------------

function randomBytes(rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.nextInt(256);
  return out;
}

function randomNumber(rng: Rng): number {
  switch (rng.nextInt(4)) {
    case 0:
      return rng.nextInt(128);
    case 1:
      return rng.nextInt(2 ** 32);
    case 2:
      return rng.nextInt(2 ** 21) * 2 ** 32 + rng.nextInt(2 ** 32);
    default:
      return big - rng.nextInt(1000);
  }
}

const ids = ["a", "b", "node-3", "nœud-α", "x".repeat(200)];
const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)]!;
const maybeString = (rng: Rng): string | null => (rng.nextInt(2) === 0 ? null : pick(rng, ["", "ctx", "read-∑-7"]));

function randomEntries(rng: Rng): Entry[] {
  return Array.from({ length: rng.nextInt(5) }, () => ({
    term: randomNumber(rng),
    index: randomNumber(rng),
    type: rng.nextInt(2) === 0 ? ("normal" as const) : ("conf-change" as const),
    data: randomBytes(rng, rng.nextInt(100)),
  }));
}

function randomMessage(rng: Rng): Message {
  const envelope = { from: pick(rng, ids), to: pick(rng, ids), term: randomNumber(rng) };
  const n = () => randomNumber(rng);
  const flag = () => rng.nextInt(2) === 1;
  switch (rng.nextInt(10)) {
    case 0:
      return { ...envelope, type: "app", index: n(), logTerm: n(), commit: n(), entries: randomEntries(rng) };
    case 1:
      return { ...envelope, type: "app-resp", index: n(), reject: flag(), rejectHint: n(), logTerm: n() };
    case 2:
      return { ...envelope, type: "vote", index: n(), logTerm: n(), transfer: flag() };
    case 3:
      return { ...envelope, type: "pre-vote", index: n(), logTerm: n(), transfer: flag() };
    case 4:
      return { ...envelope, type: "vote-resp", reject: flag() };
    case 5:
      return { ...envelope, type: "pre-vote-resp", reject: flag() };
    case 6:
      return { ...envelope, type: "heartbeat", commit: n(), context: maybeString(rng) };
    case 7:
      return { ...envelope, type: "heartbeat-resp", context: maybeString(rng) };
    case 8: {
      const confState = { voters: ids.slice(0, rng.nextInt(4)), learners: ids.slice(0, rng.nextInt(2)) };
      return { ...envelope, type: "snap", snapshot: { meta: { index: n(), term: n(), confState }, data: randomBytes(rng, rng.nextInt(200)) } };
    }
    default:
      return { ...envelope, type: "timeout-now" };
  }
}
