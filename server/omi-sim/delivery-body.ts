/**
 * @module What a delivery's body says: the events of one POST to the event web service, read from
 * OMi's XML (`<event>` or `<event_list>`) or the same as JSON. A pure function of the body, so the
 * simulator can store the body once and read an event back from it later instead of storing every
 * event again as a document of its own.
 *
 * So a body accepted once must read the same for good: stored data depends on it. Make what the
 * simulator accepts stricter in front of the store (sim-app.ts), never here.
 */
import { emptyOprEvent, type OprEvent } from "../connector/events/event-record.ts";
import { readOmiEvents } from "../connector/events/omi-xml.ts";

export type DeliveryFormat = "xml" | "json";

export type DeliveryEvents = { readonly ok: true; readonly events: readonly OprEvent[] } | { readonly ok: false; readonly error: string };

export function formatOf(contentType: string): DeliveryFormat {
  return contentType.includes("json") ? "json" : "xml";
}

export function readDelivery(format: DeliveryFormat, body: string): DeliveryEvents {
  return format === "json" ? readJsonEvents(body) : readOmiEvents(body);
}

/** JSON input: `{event}`, `{event_list: [...]}` or a bare array of events (shape checked lightly). */
function readJsonEvents(body: string): DeliveryEvents {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return { ok: false, error: "body is not JSON" };
  }
  const list = Array.isArray(document) ? document : (document as { event_list?: unknown; event?: unknown })?.event_list ?? [(document as { event?: unknown })?.event];
  if (!Array.isArray(list) || list.length === 0 || list.some((e) => typeof e !== "object" || e === null || typeof (e as { title?: unknown }).title !== "string")) {
    return { ok: false, error: "expected {event}, {event_list: [...]} or an array of events, each with a title" };
  }
  // The store counts and merges on it, as OMi does on its integer field; null is "not set" in JSON.
  const badCount = list.findIndex((e) => e.duplicate_count !== undefined && e.duplicate_count !== null && !(Number.isSafeInteger(e.duplicate_count) && e.duplicate_count >= 0));
  if (badCount >= 0) return { ok: false, error: `event ${badCount + 1}: duplicate_count must be a non-negative integer` };
  return { ok: true, events: list.map((e) => ({ ...emptyOprEvent(), ...(e as Partial<OprEvent>) })) };
}
