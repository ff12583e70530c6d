/**
 * @module Deterministic, compact text for the core's data (entries, messages, Ready batches), the
 * vocabulary of every interaction script. One line per message, fields in a fixed order, so a
 * diff of an expected output reads as "what changed in the protocol". Entries are `term/index`,
 * as in etcd's traces.
 */
import { unreachable } from "../../../server/assert.ts";
import { decodeConfChange } from "../../../server/raft/conf-change.ts";
import type { ConfState, Entry, Message, NodeId, Ready, Snapshot, SnapshotMeta } from "../../../server/raft/types.ts";

const decoder = new TextDecoder();
const snapshotDataShownMax = 80;

/** Numeric ids sort numerically ("2" before "10"); anything else sorts as text. */
export function compareIds(a: NodeId, b: NodeId): number {
  const numeric = /^\d+$/;
  if (numeric.test(a) && numeric.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort(compareIds);
}

export function formatIds(ids: Iterable<NodeId>): string {
  return `(${sortIds(ids).join(",")})`;
}

export function formatData(data: Uint8Array): string {
  return JSON.stringify(decoder.decode(data));
}

export function formatEntry(entry: Entry): string {
  const head = `${entry.term}/${entry.index}`;
  if (entry.type === "normal") return `${head} normal ${formatData(entry.data)}`;
  const change = decodeConfChange(entry.data);
  return `${head} conf-change ${change.type} ${change.nodeId}`;
}

export function formatConfState(conf: ConfState): string {
  return `voters=${formatIds(conf.voters)} learners=${formatIds(conf.learners)}`;
}

export function formatSnapshotMeta(meta: SnapshotMeta): string {
  return `index=${meta.index} term=${meta.term} ${formatConfState(meta.confState)}`;
}

/** Snapshot data is the state machine image: shown when short, summarized when not. */
export function formatSnapshot(snapshot: Snapshot): string {
  const data = snapshot.data.length <= snapshotDataShownMax ? formatData(snapshot.data) : `<${snapshot.data.length} bytes>`;
  return `${formatSnapshotMeta(snapshot.meta)} data=${data}`;
}

function formatContext(context: string | null): string {
  return context === null ? "" : ` ctx=${JSON.stringify(context)}`;
}

/** `1->2 app term=2 index=3 logTerm=1 entries=[2/4 normal "x"] commit=3`. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "app":
      return `${head} index=${m.index} logTerm=${m.logTerm} entries=[${m.entries.map(formatEntry).join(", ")}] commit=${m.commit}`;
    case "app-resp":
      // The hint fields only mean something on a rejection (types.ts); printing them otherwise is noise.
      return m.reject ? `${head} index=${m.index} reject hint=${m.rejectHint} hintTerm=${m.logTerm}` : `${head} index=${m.index}`;
    case "vote":
    case "pre-vote":
      return `${head} index=${m.index} logTerm=${m.logTerm}${m.transfer ? " transfer" : ""}`;
    case "vote-resp":
    case "pre-vote-resp":
      return `${head}${m.reject ? " reject" : ""}`;
    case "heartbeat":
      return `${head} commit=${m.commit}${formatContext(m.context)}`;
    case "heartbeat-resp":
      return `${head}${formatContext(m.context)}`;
    case "snap":
      return `${head} snapshot=[${formatSnapshot(m.snapshot)}]`;
    case "timeout-now":
      return head;
    default:
      return unreachable(m);
  }
}

/**
 * A Ready in the order the shell acts on it (persist, send, apply). `annotate` lets the env tag a
 * message it could not route (e.g. addressed to a node that does not exist).
 */
export function formatReady(ready: Ready, annotate: (m: Message) => string = () => ""): string[] {
  const lines: string[] = [];
  if (ready.softState !== null) lines.push(`soft-state role=${ready.softState.role} leader=${ready.softState.leader ?? "none"}`);
  if (ready.hardState !== null) {
    const hs = ready.hardState;
    lines.push(`hard-state term=${hs.term} vote=${hs.votedFor ?? "none"} commit=${hs.commit}`);
  }
  if (ready.snapshot !== null) lines.push(`snapshot ${formatSnapshot(ready.snapshot)}`);
  section(lines, "entries", ready.entries.map(formatEntry));
  section(lines, "messages", ready.messages.map((m) => formatMessage(m) + annotate(m)));
  section(lines, "committed", ready.committedEntries.map(formatEntry));
  section(lines, "read-states", ready.readStates.map((r) => `index=${r.index} ctx=${JSON.stringify(r.requestCtx)}`));
  return lines;
}

function section(lines: string[], title: string, items: readonly string[]): void {
  if (items.length === 0) return;
  lines.push(`${title}:`);
  for (const item of items) lines.push(`  ${item}`);
}
