/**
 * @module The replicated state machine each simulated node runs: the ordered list of applied
 * entries, each reduced to (term, code). A code identifies the entry's content: a client payload's
 * unique proposal id (> 0), 0 for an empty leader entry, a negative number for a membership change.
 * Snapshots serialise the whole list, so a node restored from a leader's snapshot can be compared
 * index by index with every other node's history.
 */
import { assert } from "../../server/assert.ts";
import { decodeConfChange } from "../../server/raft/conf-change.ts";
import type { ConfChange, ConfChangeType, Entry } from "../../server/raft/types.ts";

export const emptyEntryCode = 0;

const confChangeTypes: readonly ConfChangeType[] = ["add-voter", "add-learner", "remove-node"];

/** "n7" → 7: simulated node ids are always `n` + a small number. */
export function nodeNumber(id: string): number {
  const n = Number(id.slice(1));
  assert(id.startsWith("n") && Number.isInteger(n) && n > 0 && n < 100, `bad simulated node id ${id}`);
  return n;
}

/** A client payload: 4 bytes of proposal id, then `padBytes` filler (varies append sizes). */
export function encodePayload(proposalId: number, padBytes: number): Uint8Array {
  assert(proposalId > 0 && proposalId < 0x7fff_ffff, "proposal id out of range");
  const out = new Uint8Array(4 + padBytes);
  out[0] = proposalId >>> 24;
  out[1] = (proposalId >>> 16) & 0xff;
  out[2] = (proposalId >>> 8) & 0xff;
  out[3] = proposalId & 0xff;
  out.fill(proposalId & 0xff, 4);
  return out;
}

/** Membership changes get negative codes: -(1 + 100 × type + node number). */
export function confChangeCode(change: ConfChange): number {
  return -(1 + confChangeTypes.indexOf(change.type) * 100 + nodeNumber(change.nodeId));
}

export function entryCode(entry: Entry): number {
  if (entry.type === "conf-change") return confChangeCode(decodeConfChange(entry.data));
  if (entry.data.length === 0) return emptyEntryCode;
  assert(entry.data.length >= 4, `normal entry ${entry.index} has a malformed payload`);
  const d = entry.data;
  const id = (((d[0] ?? 0) << 24) | ((d[1] ?? 0) << 16) | ((d[2] ?? 0) << 8) | (d[3] ?? 0)) >>> 0;
  assert(id > 0, `normal entry ${entry.index} carries proposal id 0`);
  return id;
}

export class StateMachine {
  /** terms[i] / codes[i] describe the entry applied at index i + 1. */
  readonly terms: number[] = [];
  readonly codes: number[] = [];

  get applied(): number {
    return this.codes.length;
  }

  apply(index: number, term: number, code: number): void {
    assert(index === this.codes.length + 1, `apply ${index} after ${this.codes.length}`);
    this.terms.push(term);
    this.codes.push(code);
  }

  clone(): StateMachine {
    const copy = new StateMachine();
    copy.terms.push(...this.terms);
    copy.codes.push(...this.codes);
    return copy;
  }

  /** Layout: Int32 count, then (term, code) per index. */
  encode(): Uint8Array {
    const words = new Int32Array(1 + 2 * this.codes.length);
    words[0] = this.codes.length;
    for (let i = 0; i < this.codes.length; i += 1) {
      words[1 + 2 * i] = this.terms[i] ?? 0;
      words[2 + 2 * i] = this.codes[i] ?? 0;
    }
    return new Uint8Array(words.buffer);
  }

  static decode(data: Uint8Array): StateMachine {
    assert(data.byteLength % 4 === 0 && data.byteLength >= 4, "snapshot data is not a state machine image");
    const words = new Int32Array(data.slice().buffer);
    const count = words[0] ?? -1;
    assert(words.length === 1 + 2 * count, "snapshot image length disagrees with its count");
    const sm = new StateMachine();
    for (let i = 0; i < count; i += 1) sm.apply(i + 1, words[1 + 2 * i] ?? 0, words[2 + 2 * i] ?? 0);
    return sm;
  }
}
