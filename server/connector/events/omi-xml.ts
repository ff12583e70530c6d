/**
 * @module OprEvents as XML for OMi's event web service (`POST /opr-web/rest/9.10/event_list`), and
 * back: what OMi (or the OMi simulator) is sent or lists.
 *
 * Writing: one `<event_list>` in OMi's namespace, elements in the data model's order, no
 * whitespace between them (it would be character data to a reader). Empty strings are "not set"
 * and left out (title excepted), so OMi applies its defaults rather than empty values. Text is
 * escaped so that any string survives: `&`, `<`, `>` as entities (which also breaks up `]]>`), CR as
 * `&#13;` (a literal one would become LF when read). Characters XML 1.0 cannot carry at all (C0
 * controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD rather than an unreadable document.
 *
 * Reading: one `<event>` root or an `<event_list>`, with OMi's namespace or none. Names are matched
 * without their prefix. Elements outside our subset are skipped, not refused: OMi's own data model
 * is far larger (id, time_received, annotations…) and an OMi listing must stay readable. Fields we
 * do carry are checked: given once, severity and state from OMi's lists, duplicate_count an integer.
 */
import { assert } from "../../assert.ts";
import { emptyOprEvent, eventStates, isEventState, isSeverity, oprTextFields, severities, type OprEvent } from "./event-record.ts";
import { readXml, type XmlElement } from "./xml-reader.ts";

export const omiNamespace = "http://www.hp.com/2009/software/opr/data_model";

export type OmiEventsResult = { ok: true; events: OprEvent[] } | { ok: false; error: string };

type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

/** Data model order up to `object`; hints, related_ci, time_created, custom attributes and count follow. */
export const omiLeadingFields = ["title", "description", "key", "close_key_pattern", "state", "severity", "category", "subcategory", "application", "object"] as const;
/** The text fields after the hints, in order. */
export const omiTrailingFields = ["related_ci", "time_created"] as const;

export function writeOmiEventList(events: readonly OprEvent[]): string {
  const parts = [`<event_list xmlns="${omiNamespace}">`];
  for (const event of events) parts.push(writeOmiEvent(event));
  parts.push("</event_list>");
  return parts.join("");
}

/** One `<event>` element (no namespace declaration: it goes inside an `<event_list>`). */
export function writeOmiEvent(event: OprEvent): string {
  assert(
    event.duplicate_count === undefined || (Number.isSafeInteger(event.duplicate_count) && event.duplicate_count >= 0),
    "duplicate_count is a non-negative integer",
  );
  const parts = ["<event>", element("title", event.title ?? "")];
  for (const field of omiLeadingFields.slice(1)) if (event[field]) parts.push(element(field, event[field]));
  if (event.related_ci_hints.length > 0) {
    parts.push("<related_ci_hints>", ...event.related_ci_hints.map((hint) => element("hint", hint)), "</related_ci_hints>");
  }
  for (const field of omiTrailingFields) if (event[field]) parts.push(element(field, event[field]));
  const attributes = Object.entries(event.custom_attributes);
  if (attributes.length > 0) {
    parts.push("<custom_attribute_list>");
    for (const [name, value] of attributes) parts.push("<custom_attribute>", element("name", name), element("value", value), "</custom_attribute>");
    parts.push("</custom_attribute_list>");
  }
  if (event.duplicate_count !== undefined) parts.push(element("duplicate_count", String(event.duplicate_count)));
  parts.push("</event>");
  return parts.join("");
}

function element(name: string, value: string): string {
  return `<${name}>${escapeText(value)}</${name}>`;
}

/** Escapes markup and CR; replaces what XML 1.0 cannot represent with U+FFFD. One pass. */
export function escapeText(value: string): string {
  let out = "";
  let runStart = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(value.charCodeAt(i + 1))) {
      i++; // a well-formed pair passes through
      continue;
    }
    const replacement = escapeUnit(unit);
    if (replacement === null) continue;
    out += value.slice(runStart, i) + replacement;
    runStart = i + 1;
  }
  return runStart === 0 ? value : out + value.slice(runStart);
}

function escapeUnit(unit: number): string | null {
  if (unit === 0x26) return "&amp;";
  if (unit === 0x3c) return "&lt;";
  if (unit === 0x3e) return "&gt;";
  if (unit === 0x0d) return "&#13;";
  if (unit < 0x20 && unit !== 0x09 && unit !== 0x0a) return "\uFFFD";
  if ((unit >= 0xd800 && unit <= 0xdfff) || unit === 0xfffe || unit === 0xffff) return "\uFFFD";
  return null;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

export function readOmiEvents(text: string): OmiEventsResult {
  const read = readXml(text);
  if (!read.ok) return { ok: false, error: read.error };
  const { root } = read;
  const namespace = declaredNamespace(root);
  if (namespace !== undefined && namespace !== omiNamespace) {
    return problem(`root <${root.name}> is in namespace ${namespace}, expected ${omiNamespace} or none`);
  }
  const rootName = localName(root.name);
  if (rootName === "event") {
    const event = readEvent(root, 1);
    return event.ok ? { ok: true, events: [event.value] } : event;
  }
  if (rootName !== "event_list") return problem(`root <${root.name}> is neither <event> nor <event_list>`);
  const events: OprEvent[] = [];
  for (const child of root.children) {
    if (localName(child.name) !== "event") continue;
    const event = readEvent(child, events.length + 1);
    if (!event.ok) return event;
    events.push(event.value);
  }
  return { ok: true, events };
}

/** The root's own namespace, if it declares it (namespaces are not resolved beyond the root). */
function declaredNamespace(root: XmlElement): string | undefined {
  const colon = root.name.indexOf(":");
  const declaration = colon < 0 ? "xmlns" : `xmlns:${root.name.slice(0, colon)}`;
  return Object.hasOwn(root.attributes, declaration) ? root.attributes[declaration] : undefined;
}

function localName(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(colon + 1);
}

/** The fields an `<event>` may carry, each a bit, so "given twice" needs no set per event. */
const knownFields = [...oprTextFields, "related_ci_hints", "custom_attribute_list", "duplicate_count"] as const;
type KnownField = (typeof knownFields)[number];
const fieldBits = new Map<string, number>(knownFields.map((field, i) => [field, 2 ** i]));
assert(fieldBits.size <= 31, "the field bits fit a 32-bit mask");

/**
 * The known field an element names, as our own constant string, or null. A switch compares text;
 * a Map or property lookup would first hash the freshly read name (measured: most of the cost of
 * reading an event). The assertion below checks the cases against `knownFields`.
 */
function knownField(name: string): KnownField | null {
  switch (name) {
    case "title":
      return "title";
    case "description":
      return "description";
    case "key":
      return "key";
    case "close_key_pattern":
      return "close_key_pattern";
    case "state":
      return "state";
    case "severity":
      return "severity";
    case "category":
      return "category";
    case "subcategory":
      return "subcategory";
    case "application":
      return "application";
    case "object":
      return "object";
    case "related_ci":
      return "related_ci";
    case "time_created":
      return "time_created";
    case "related_ci_hints":
      return "related_ci_hints";
    case "custom_attribute_list":
      return "custom_attribute_list";
    case "duplicate_count":
      return "duplicate_count";
    default:
      return null;
  }
}
assert(knownFields.every((field) => knownField(`${field}`) === field), "knownField names every field an event may carry");

/** One `<event>`; `position` counts from 1 among the list's events. */
function readEvent(element: XmlElement, position: number): Checked<OprEvent> {
  const where = () => `event ${position}`;
  const event = emptyOprEvent();
  let seen = 0;
  for (const child of element.children) {
    const field = knownField(localName(child.name));
    if (field === null) continue;
    const bit = fieldBits.get(field)!;
    if ((seen & bit) !== 0) return problem(`${where()}: field ${field} given twice`);
    seen |= bit;
    if (field === "related_ci_hints") {
      event.related_ci_hints = child.children.filter((hint) => localName(hint.name) === "hint").map((hint) => hint.text);
    } else if (field === "custom_attribute_list") {
      const attributes = readCustomAttributes(child, where());
      if (!attributes.ok) return attributes;
      event.custom_attributes = attributes.value;
    } else if (field === "duplicate_count") {
      const count = child.text.trim();
      if (!/^\d{1,15}$/.test(count)) return problem(`${where()}: field duplicate_count: ${quote(child.text)} is not a non-negative integer`);
      event.duplicate_count = Number(count);
    } else if (field === "severity" || field === "state") {
      const value = readListed(field, child.text, where);
      if (!value.ok) return value;
      event[field] = value.value;
    } else {
      event[field] = child.text;
    }
  }
  assert(oprTextFields.every((field) => typeof event[field] === "string"), "every text field of a read event is a string");
  return { ok: true, value: event };
}

/** Severity and state come from OMi's lists (any case, spaces around); empty means not set. */
function readListed(field: "severity" | "state", text: string, where: () => string): Checked<string> {
  if (text === "") return { ok: true, value: text };
  const value = text.trim().toLowerCase();
  if (field === "severity" && !isSeverity(value)) return problem(`${where()}: field severity: ${quote(text)} is not one of ${severities.join(", ")}`);
  if (field === "state" && !isEventState(value)) return problem(`${where()}: field state: ${quote(text)} is not one of ${eventStates.join(", ")}`);
  return { ok: true, value };
}

function readCustomAttributes(list: XmlElement, where: string): Checked<Record<string, string>> {
  const attributes = Object.create(null) as Record<string, string>;
  for (const [index, item] of list.children.entries()) {
    if (localName(item.name) !== "custom_attribute") continue;
    const name = item.children.find((part) => localName(part.name) === "name")?.text ?? "";
    const value = item.children.find((part) => localName(part.name) === "value")?.text ?? "";
    if (name === "") return problem(`${where}: custom_attribute ${index + 1}: missing or empty name`);
    if (Object.hasOwn(attributes, name)) return problem(`${where}: custom attribute ${quote(name)} given twice`);
    attributes[name] = value;
  }
  return { ok: true, value: attributes };
}

/** A value for an error message, cut short. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

function problem(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
