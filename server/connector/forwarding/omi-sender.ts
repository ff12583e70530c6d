/**
 * @module Sends one batch of events to OMi's event web service (`POST <base>/opr-web/rest/9.10/
 * event_list`, XML event list) and says what the outcome means for the outbox: delivered, worth
 * retrying (network error, timeout, 408/429/5xx), or refused for good (any other 4xx: retrying the
 * same bytes cannot help, and the batch must be reported, not silently dropped).
 *
 * Retries are the caller's: `retryDelayMs` is the pure backoff (exponential with full jitter, capped)
 * so a fleet of connectors does not hammer a recovering OMi in step.
 */
import type { OprEvent } from "../events/event-record.ts";
import { writeOmiEventList } from "../events/omi-xml.ts";
import { assert } from "../../assert.ts";

export interface OmiTarget {
  /** e.g. https://omi.example.com (the path is added here). */
  readonly baseUrl: string;
  readonly user?: string;
  readonly password?: string;
  /** PEM CA for a private OMi certificate. */
  readonly ca?: string;
  readonly timeoutMs: number;
}

export type SendOutcome =
  | { readonly kind: "delivered"; readonly status: number }
  | { readonly kind: "retry"; readonly reason: string }
  | { readonly kind: "refused"; readonly status: number; readonly reason: string };

export const eventListPath = "/opr-web/rest/9.10/event_list";

export async function sendToOmi(target: OmiTarget, events: readonly OprEvent[]): Promise<SendOutcome> {
  assert(events.length > 0, "a batch holds at least one event");
  const headers: Record<string, string> = { "content-type": "application/xml" };
  if (target.user !== undefined) headers["authorization"] = `Basic ${Buffer.from(`${target.user}:${target.password ?? ""}`).toString("base64")}`;
  let response: Response;
  try {
    response = await fetch(`${target.baseUrl.replace(/\/+$/, "")}${eventListPath}`, {
      method: "POST",
      headers,
      body: writeOmiEventList(events),
      signal: AbortSignal.timeout(target.timeoutMs),
      // A redirect would turn the POST into a bodiless GET that OMi answers 200: a "delivery" of
      // nothing. Never follow one; report it.
      redirect: "manual",
      ...(target.ca === undefined ? {} : { tls: { ca: target.ca } }),
    });
  } catch (error) {
    return { kind: "retry", reason: (error as Error).message };
  }
  const body = await response.text().catch(() => "");
  if (response.ok) return { kind: "delivered", status: response.status };
  if (response.status === 408 || response.status === 429 || response.status >= 500) return { kind: "retry", reason: `HTTP ${response.status}` };
  if (response.status >= 300 && response.status < 400) return { kind: "refused", status: response.status, reason: `HTTP ${response.status} redirect to ${response.headers.get("location") ?? "?"}: fix omiTarget.url` };
  return { kind: "refused", status: response.status, reason: `HTTP ${response.status}: ${body.slice(0, 200)}` };
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
