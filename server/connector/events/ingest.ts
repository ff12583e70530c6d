/**
 * @module From one listener request to the events its policy sends: the body is parsed by the
 * policy's input format (XML `<event_data>`, JSON with the same fields, or JSON through the policy's
 * generic mapping), each record runs through the policy engine, and every resulting event is checked.
 * All or nothing: one bad record refuses the whole request with a 4xx naming it, so a batch is never
 * half-accepted. Pure; the HTTP layer maps the status and commits the events.
 */
import type { Policy } from "../../config/model/types.ts";
import { xmlLimits } from "../../constants.ts";
import { parseEventData, isIsoDateTime } from "./event-xml.ts";
import { oprTextFields, type OprEvent } from "./event-record.ts";
import { evaluate, recordOf } from "../policies/policy-engine.ts";
import { mapJson } from "../policies/json-mapping.ts";

export type IngestResult =
  | { readonly ok: true; readonly events: OprEvent[]; readonly suppressed: number; readonly ignored: number }
  | { readonly ok: false; readonly status: 400 | 415; readonly error: string };

/** JSON nesting accepted from a source (a deep document is a parser-stack attack, not an event). */
const jsonDepthMax = 64;
/** Longest field OMi gets from us; a longer one is refused rather than cut silently. */
const fieldCharsMax = 64 * 1024;
const customAttributesMax = 256;

export function ingest(policy: Policy, request: { readonly contentType: string; readonly body: string }, options: { readonly nowMs: number }): IngestResult {
  const records = recordsOf(policy, request);
  if (!records.ok) return records;
  if (records.records.length > xmlLimits.eventsPerRequestMax) return refuse(400, `${records.records.length} events in one request; at most ${xmlLimits.eventsPerRequestMax}`);
  const events: OprEvent[] = [];
  let suppressed = 0;
  let ignored = 0;
  for (const [i, record] of records.records.entries()) {
    const outcome = evaluate(policy, record, options);
    if (outcome.kind === "suppressed") suppressed++;
    else if (outcome.kind === "ignored") ignored++;
    else {
      const problem = eventProblem(outcome.event);
      if (problem !== null) return refuse(400, `event ${i + 1}: ${problem}; nothing was accepted`);
      events.push(outcome.event);
    }
  }
  return { ok: true, events, suppressed, ignored };
}

function recordsOf(policy: Policy, request: { readonly contentType: string; readonly body: string }): { ok: true; records: Record<string, unknown>[] } | Extract<IngestResult, { ok: false }> {
  const type = request.contentType.split(";")[0]!.trim().toLowerCase();
  const isXml = type === "text/xml" || type === "application/xml";
  const isJson = type === "application/json";
  if (!isXml && !isJson) return refuse(415, `content-type '${type || "(none)"}' is not accepted; policy '${policy.name}' takes ${policy.inputFormat === "xml" ? "text/xml or application/xml" : "application/json"}`);
  if ((policy.inputFormat === "xml") !== isXml) return refuse(415, `policy '${policy.name}' takes ${policy.inputFormat.toUpperCase()}, not ${type}`);
  if (isXml) {
    const parsed = parseEventData(request.body);
    return parsed.ok ? { ok: true, records: parsed.events.map(recordOf) } : refuse(400, `malformed event XML: ${parsed.error}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(request.body);
  } catch (error) {
    return refuse(400, `malformed JSON: ${(error as Error).message}`);
  }
  if (depthOf(document, jsonDepthMax + 1) > jsonDepthMax) return refuse(400, `JSON nested deeper than ${jsonDepthMax} levels`);
  if (policy.mapping !== undefined) {
    const mapped = mapJson(document, policy.mapping);
    return mapped.ok ? { ok: true, records: mapped.records } : refuse(400, `the policy's mapping cannot read this document: ${mapped.error}`);
  }
  return jsonEvents(document);
}

/** Without a mapping: one event object, an array of them, or `{ "event_data": [...] }`, with event_data's fields. */
function jsonEvents(document: unknown): { ok: true; records: Record<string, unknown>[] } | Extract<IngestResult, { ok: false }> {
  const list = Array.isArray(document) ? document : isObject(document) && Array.isArray(document["event_data"]) ? document["event_data"] : [document];
  if (list.length === 0) return refuse(400, "no events in the request");
  const records: Record<string, unknown>[] = [];
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (!isObject(item)) return refuse(400, `event ${i + 1}: must be a JSON object`);
    // JSON.parse makes own, enumerable properties only: for-in sees exactly Object.keys.
    for (const field in item) {
      const value = item[field];
      if (field === "custom_attributes") {
        if (!isObject(value) || !allStrings(value)) return refuse(400, `event ${i + 1}: custom_attributes must map names to strings`);
      } else if (typeof value !== "string") return refuse(400, `event ${i + 1}: field ${field} must be a string`);
    }
    // The parsed document is ours: its objects become the records, without a copy each. Attribute
    // maps are null-prototype, as every parser builds them (names are untrusted input).
    const given = item["custom_attributes"];
    item["custom_attributes"] = given === undefined ? noAttributes : Object.assign(Object.create(null) as Record<string, string>, given);
    records.push(item);
  }
  return { ok: true, records };
}

/** The attributes of every record that brings none: read, never written (the engine copies). */
const noAttributes: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

function allStrings(object: Record<string, unknown>): boolean {
  for (const name in object) if (typeof object[name] !== "string") return false;
  return true;
}

/** What OMi would refuse or we would silently damage. */
function eventProblem(event: OprEvent): string | null {
  if (event.time_created !== "" && !isIsoDateTime(event.time_created)) return `time_created '${event.time_created.slice(0, 64)}' is not an ISO-8601 date-time`;
  // An event's text lives in its text fields (the rest are the hints list and the attributes).
  if (longestText(event) > fieldCharsMax) {
    for (const field of oprTextFields) if (event[field].length > fieldCharsMax) return `field ${field} is longer than ${fieldCharsMax} characters`;
  }
  if (!fewerThan(event.custom_attributes, customAttributesMax + 1)) return `more than ${customAttributesMax} custom attributes`;
  return null;
}

/** The longest text field's length, read field by field (names the JIT can specialise; this runs for every event). */
function longestText(event: OprEvent): number {
  return Math.max(
    event.title.length,
    event.description.length,
    event.key.length,
    event.close_key_pattern.length,
    event.state.length,
    event.severity.length,
    event.category.length,
    event.subcategory.length,
    event.application.length,
    event.object.length,
    event.related_ci.length,
    event.time_created.length,
  );
}

/** Whether `object` has fewer than `bound` own names (counted up to the bound, with no array of them). */
function fewerThan(object: Readonly<Record<string, string>>, bound: number): boolean {
  let count = 0;
  for (const name in object) if (Object.hasOwn(object, name) && ++count >= bound) return false;
  return true;
}

function depthOf(value: unknown, limit: number): number {
  // Iterative, so a hostile document cannot overflow this function's own stack either. Only
  // structures are stacked; a scalar counts as one level below its parent.
  if (typeof value !== "object" || value === null) return 1;
  let deepest = 1;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop() as Record<string, unknown>;
    const depth = depths.pop()!;
    for (const key in node) {
      const child = node[key];
      deepest = Math.max(deepest, depth + 1);
      if (deepest > limit) return deepest;
      if (typeof child === "object" && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return deepest;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function refuse(status: 400 | 415, error: string): Extract<IngestResult, { ok: false }> {
  return { ok: false, status, error };
}
