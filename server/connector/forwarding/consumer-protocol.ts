/**
 * @module The WebSocket consumer protocol (`GET /ws/forward/<package>`), version 1: JSON text
 * messages, a discriminated union on `type`, each with `v: 1`. Pure: parsing is strict (unknown
 * types and keys are refused, so a typo such as `afer` is an error, not a silent default).
 *
 *   client → {type:"subscribe", v:1, after}        server → {type:"subscribed", v:1, package, epoch, cursor}
 *   server → {type:"batch", v:1, batch, first, last, events:[{seq, id, event}]}
 *   client → {type:"ack", v:1, through}             server → {type:"acked", v:1, through} once committed
 *   server → {type:"not-holder", v:1, holder, address}, then close 4421
 *   server → {type:"error", v:1, message}, then close (4400 and others below)
 */
import type { OprEvent } from "../events/event-record.ts";
import type { OutboxEntry } from "../../state/outbox-types.ts";
import { assert } from "../../assert.ts";
import { forwardTargetLimits } from "../../constants.ts";

export const consumerProtocolVersion = 1;
export const consumerPathPrefix = "/ws/forward/";

/** Close codes in the application range (4000-4999), each modelled on the HTTP status it resembles. */
export const consumerCloseCodes = {
  /**
   * A message that is not valid protocol: bad JSON, unknown type, an ack beyond what was sent, a
   * subscribe `after` beyond the last event accepted for the package.
   */
  protocolError: 4400,
  /** No deployed package of that name forwards to WebSocket consumers. */
  unknownPackage: 4404,
  /** The socket did not subscribe in time. */
  subscribeTimeout: 4408,
  /** A newer consumer subscribed to the package on this node and took over. */
  replaced: 4409,
  /** This node stopped forwarding the package (failover, redeploy, shutdown): reconnect. */
  holderGone: 4410,
  /** Too many consumer connections on this node. */
  tooMany: 4429,
  /** This node does not hold the package now; the not-holder message says who does. */
  notHolder: 4421,
} as const;

export type ClientMessage = { readonly type: "subscribe"; readonly v: 1; readonly after: number } | { readonly type: "ack"; readonly v: 1; readonly through: number };

export interface BatchEvent {
  readonly seq: number;
  readonly id: string;
  readonly event: OprEvent;
}

export type ServerMessage =
  | { readonly type: "subscribed"; readonly v: 1; readonly package: string; readonly epoch: number; readonly cursor: number }
  | { readonly type: "batch"; readonly v: 1; readonly batch: number; readonly first: number; readonly last: number; readonly events: readonly BatchEvent[] }
  | { readonly type: "acked"; readonly v: 1; readonly through: number }
  | { readonly type: "not-holder"; readonly v: 1; readonly holder: string | null; readonly address: string | null }
  | { readonly type: "error"; readonly v: 1; readonly message: string };

export type ParsedClientMessage = { readonly ok: true; readonly message: ClientMessage } | { readonly ok: false; readonly error: string };

const clientKeys: Readonly<Record<ClientMessage["type"], readonly string[]>> = { subscribe: ["type", "v", "after"], ack: ["type", "v", "through"] };

/** A text message from a consumer; `null` stands for a binary one. */
export function parseClientMessage(text: string | null): ParsedClientMessage {
  if (text === null) return { ok: false, error: "binary message: the protocol speaks JSON text" };
  const max = forwardTargetLimits.consumerMessageCharsMax;
  if (text.length > max) return { ok: false, error: `message of ${text.length} characters; at most ${max}` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: "not valid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "a message is a JSON object with a type" };
  const o = value as Record<string, unknown>;
  if (o.type !== "subscribe" && o.type !== "ack") return { ok: false, error: `type must be subscribe or ack (got ${JSON.stringify(o.type) ?? "none"})` };
  if (o.v !== consumerProtocolVersion) return { ok: false, error: `v must be ${consumerProtocolVersion} (got ${JSON.stringify(o.v) ?? "none"})` };
  const known = clientKeys[o.type];
  const unknown = Object.keys(o).find((key) => !known.includes(key));
  if (unknown !== undefined) return { ok: false, error: `unknown key '${unknown.slice(0, 64)}' in ${o.type} (known: ${known.join(", ")})` };
  const field = o.type === "subscribe" ? "after" : "through";
  const seq = o[field];
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return { ok: false, error: `${field} must be a sequence number (an integer >= 0)` };
  return { ok: true, message: o.type === "subscribe" ? { type: "subscribe", v: 1, after: seq } : { type: "ack", v: 1, through: seq } };
}

export function encodeServerMessage(message: ServerMessage): string {
  return JSON.stringify(message);
}

/** A batch message for entries in sequence order. */
export function batchMessage(batch: number, entries: readonly OutboxEntry[]): ServerMessage {
  assert(entries.length > 0, "a batch message holds at least one event");
  return { type: "batch", v: 1, batch, first: entries[0]!.seq, last: entries.at(-1)!.seq, events: entries.map((e) => ({ seq: e.seq, id: e.id, event: e.event })) };
}
