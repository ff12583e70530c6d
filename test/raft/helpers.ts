/**
 * @module Small builders shared by the Raft unit and paper tests: single nodes restored from an
 * arbitrary log (so a test can state "follower with log terms [1,1,2]"), message literals, and a
 * one-node Ready drain.
 */
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Entry, Message, NodeId, Ready } from "../../server/raft/types.ts";
import { nodeOptions, type NodeOverrides } from "./network.ts";

export const encoder = new TextEncoder();

export function entriesOfTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({ term, index: from + i, type: "normal", data: encoder.encode(`e${from + i}`) }));
}

export interface RestoreSpec {
  readonly terms?: readonly number[];
  readonly term?: number;
  readonly votedFor?: NodeId | null;
  readonly commit?: number;
  readonly voters?: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly overrides?: NodeOverrides;
}

/** A node restarted with log terms `terms`, configuration from a snapshot at index 0. */
export function restoredNode(id: NodeId, spec: RestoreSpec = {}): RawNode {
  const terms = spec.terms ?? [];
  const commit = spec.commit ?? 0;
  return new RawNode(
    nodeOptions(id, {
      persisted: {
        hardState: { term: spec.term ?? (terms[terms.length - 1] ?? 0), votedFor: spec.votedFor ?? null, commit },
        snapshot: {
          meta: { index: 0, term: 0, confState: { voters: spec.voters ?? ["a", "b", "c"], learners: spec.learners ?? [] } },
          data: new Uint8Array(0),
        },
        entries: entriesOfTerms(terms),
        applied: commit,
      },
      ...spec.overrides,
    }),
  );
}

/** Take and acknowledge one Ready ("persist instantly"); null if there was nothing. */
export function drain(node: RawNode): Ready | null {
  if (!node.hasReady()) return null;
  const rd = node.ready();
  node.advance();
  return rd;
}

export function drainMessages(node: RawNode): Message[] {
  return drain(node)?.messages.slice() ?? [];
}

export function tickUntil(node: RawNode, done: () => boolean, ticksMax = 100): number {
  for (let i = 1; i <= ticksMax; i++) {
    node.tick();
    if (done()) return i;
  }
  throw new Error("condition not reached");
}

/** The message shape(s) whose `type` admits T (vote and pre-vote share one union member). */
type Of<T extends Message["type"]> = Message extends infer M
  ? M extends { readonly type: infer U }
    ? T extends U
      ? M & { readonly type: T }
      : never
    : never
  : never;

export function app(from: NodeId, to: NodeId, term: number, fields: Partial<Omit<Of<"app">, "type" | "from" | "to" | "term">> = {}): Message {
  return { type: "app", from, to, term, index: 0, logTerm: 0, entries: [], commit: 0, ...fields };
}

export function heartbeat(from: NodeId, to: NodeId, term: number, commit = 0, context: string | null = null): Message {
  return { type: "heartbeat", from, to, term, commit, context };
}

export function vote(from: NodeId, to: NodeId, term: number, index: number, logTerm: number, type: "vote" | "pre-vote" = "vote", transfer = false): Message {
  return { type, from, to, term, index, logTerm, transfer };
}

export function appResp(from: NodeId, to: NodeId, term: number, index: number, reject = false, rejectHint = 0, logTerm = 0): Message {
  return { type: "app-resp", from, to, term, index, reject, rejectHint, logTerm };
}

export function voteResp(from: NodeId, to: NodeId, term: number, reject: boolean, type: "vote-resp" | "pre-vote-resp" = "vote-resp"): Message {
  return { type, from, to, term, reject };
}

export function ofType<T extends Message["type"]>(messages: readonly Message[], type: T): Of<T>[] {
  return messages.filter((m): m is Of<T> => m.type === type);
}
