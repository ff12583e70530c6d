/**
 * @module Sends one batch of events to OMi's event web service (`POST <base>/opr-web/rest/9.10/
 * event_list`, XML event list) and says what the outcome means for the outbox (http-batch.ts):
 * delivered, worth retrying (network error, timeout, 408/429/5xx), or refused for good (any other
 * 4xx, a redirect). `OmiForwardTarget` is the package target `{ type: omi }`, the default.
 *
 * Retries are the caller's: `retryDelayMs` is the pure backoff (exponential with full jitter, capped)
 * so a fleet of connectors does not hammer a recovering OMi in step.
 */
import { omiEventListBytes } from "../events/omi-xml-bytes.ts";
import type { OutboxEntry } from "../../state/outbox-types.ts";
import { assert } from "../../assert.ts";
import { postBatch } from "./http-batch.ts";
import type { ForwardTarget, SendOutcome, TargetStatus } from "./forward-target.ts";

export type { SendOutcome } from "./forward-target.ts";

export interface OmiTarget {
  /** e.g. https://omi.example.com (the path is added here). */
  readonly baseUrl: string;
  readonly user?: string;
  readonly password?: string;
  /** PEM CA for a private OMi certificate. */
  readonly ca?: string;
  readonly timeoutMs: number;
}

export const eventListPath = "/opr-web/rest/9.10/event_list";

/** Posts one event list: OMi's XML as UTF-8 (omi-xml-bytes.ts). */
export async function sendToOmi(target: OmiTarget, eventList: Uint8Array<ArrayBuffer>): Promise<SendOutcome> {
  const headers: Record<string, string> = { "content-type": "application/xml" };
  if (target.user !== undefined) headers["authorization"] = `Basic ${Buffer.from(`${target.user}:${target.password ?? ""}`).toString("base64")}`;
  return postBatch({
    url: `${target.baseUrl.replace(/\/+$/, "")}${eventListPath}`,
    headers,
    body: eventList,
    timeoutMs: target.timeoutMs,
    redirectHint: "fix omiTarget.url",
    ...(target.ca === undefined ? {} : { ca: target.ca }),
  });
}

const noOmiTarget = "no omiTarget configured on this node";

/** The package target `{ type: omi }`: this node's omiTarget, or a standing alarm when it has none. */
export class OmiForwardTarget implements ForwardTarget {
  readonly type = "omi";
  readonly batchesInFlightMax = 1;

  constructor(private readonly target: OmiTarget | null) {}

  start(): void {}

  stop(): void {}

  send(batch: readonly OutboxEntry[]): Promise<SendOutcome> {
    assert(batch.length > 0, "a batch holds at least one event");
    if (this.target === null) return Promise.resolve({ kind: "retry", reason: noOmiTarget });
    return sendToOmi(this.target, omiEventListBytes(batch.map((e) => e.bytes)));
  }

  /** Nothing to forget: one POST at a time, and it has settled when the forwarder drops it. */
  abandon(): void {}

  committed(): void {}

  status(): TargetStatus {
    return { type: "omi", url: this.target?.baseUrl ?? null };
  }

  alarm(): string | null {
    return this.target === null ? noOmiTarget : null;
  }
}

export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1-based): uniform in [0, min(max, base * 2^(attempt-1))]. */
export function retryDelayMs(attempt: number, backoff: Backoff, random01: () => number): number {
  assert(Number.isInteger(attempt) && attempt >= 1, "attempts count from 1");
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random01() * ceiling);
}
