/**
 * @module Binary encoding of a ConfChange, carried as the data of a `conf-change` log entry.
 * Layout: [version u8][type u8][node id, UTF-8]. Compact because it is replicated and persisted;
 * decoding asserts, since a malformed conf-change entry in a committed log is corruption, not input.
 */
import { assert, unreachable } from "../assert.ts";
import { raftTuning } from "../constants.ts";
import type { ConfChange, ConfChangeType } from "./types.ts";

const formatVersion = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function typeCode(type: ConfChangeType): number {
  switch (type) {
    case "add-voter":
      return 0;
    case "add-learner":
      return 1;
    case "remove-node":
      return 2;
    default:
      return unreachable(type);
  }
}

const typesByCode: readonly ConfChangeType[] = ["add-voter", "add-learner", "remove-node"];

export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = encoder.encode(change.nodeId);
  assert(id.length > 0, "conf change needs a node id");
  assert(id.length <= raftTuning.nodeIdBytesMax, "conf change node id too long");
  const out = new Uint8Array(2 + id.length);
  out[0] = formatVersion;
  out[1] = typeCode(change.type);
  out.set(id, 2);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.length >= 3, "conf change too short");
  assert(data.length <= 2 + raftTuning.nodeIdBytesMax, "conf change too long");
  assert(data[0] === formatVersion, () => `conf change format version ${data[0]} unknown`);
  const type = typesByCode[data[1] ?? 255];
  assert(type !== undefined, () => `conf change type code ${data[1]} unknown`);
  const nodeId = decoder.decode(data.subarray(2));
  return { type, nodeId };
}
