/**
 * @module Event XML as REST Web Service Listener integrations send it: one `<event_data>` root, or
 * any root whose children are all `<event_data>` (`<event_data_list>`, `<events>`…), parsed into
 * InboundEvents.
 *
 * Strict about shape, because whatever is not understood would otherwise vanish without a trace:
 * an unknown element (a typo like `<titel>`), a field given twice, stray text or an unexpected
 * attribute inside an event is an error naming the event's position and the field. Only namespace
 * declarations (`xmlns`, `xmlns:*`) are accepted as attributes, as they carry no data; a batch
 * root's own attributes are ignored, since its name is free too.
 *
 * Field values are kept verbatim (CDATA may carry deliberate whitespace), except that severity is
 * normalized to lower case, severity and time_created are trimmed before they are checked, and
 * custom attribute names are trimmed (a name never means its surrounding whitespace).
 */
import { assert } from "../../assert.ts";
import { xmlLimits } from "../../constants.ts";
import { inboundTextFields, isInboundTextField, isSeverity, severities, type InboundEvent, type InboundTextField } from "./event-record.ts";
import { readXml, type XmlElement } from "./xml-reader.ts";

export type EventDataResult = { ok: true; events: InboundEvent[] } | { ok: false; error: string };

type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const eventElement = "event_data";
const customAttributesElement = "custom_attributes";

export function parseEventData(text: string): EventDataResult {
  const read = readXml(text);
  if (!read.ok) return { ok: false, error: read.error };
  const { root } = read;
  if (root.name === eventElement) {
    const event = readEvent(root, 1);
    return event.ok ? { ok: true, events: [event.value] } : event;
  }
  return readBatch(root);
}

function readBatch(root: XmlElement): EventDataResult {
  const count = root.children.length;
  if (!root.children.some((child) => child.name === eventElement)) {
    return problem(`root <${root.name}> is neither <${eventElement}> nor a list of <${eventElement}> elements`);
  }
  if (count > xmlLimits.eventsPerRequestMax) return problem(`batch of ${count} events exceeds ${xmlLimits.eventsPerRequestMax}`);
  if (!isBlank(root.text)) return problem(`text directly inside <${root.name}>: a batch holds only <${eventElement}> elements`);
  const events: InboundEvent[] = [];
  for (const [index, child] of root.children.entries()) {
    if (child.name !== eventElement) return problem(`event ${index + 1}: <${child.name}> in <${root.name}>, expected <${eventElement}>`);
    const event = readEvent(child, index + 1);
    if (!event.ok) return event;
    events.push(event.value);
  }
  assert(events.length >= 1 && events.length <= xmlLimits.eventsPerRequestMax, "a batch holds 1 to eventsPerRequestMax events");
  return { ok: true, events };
}

/** One `<event_data>`; `position` counts from 1 within the batch. */
function readEvent(element: XmlElement, position: number): Checked<InboundEvent> {
  const where = `event ${position}`;
  const shape = checkContainer(element, where);
  if (shape !== null) return problem(shape);
  const fields: Partial<Record<InboundTextField, string>> = {};
  let customAttributes: Record<string, string> | null = null;
  for (const child of element.children) {
    const field = child.name;
    if (field === customAttributesElement) {
      if (customAttributes !== null) return problem(`${where}: field ${field} given twice`);
      const read = readCustomAttributes(child, where);
      if (!read.ok) return read;
      customAttributes = read.value;
    } else if (isInboundTextField(field)) {
      if (Object.hasOwn(fields, field)) return problem(`${where}: field ${field} given twice`);
      const value = readField(child, field, where);
      if (!value.ok) return value;
      fields[field] = value.value;
    } else {
      return problem(`${where}: unknown element <${field}> (fields: ${[...inboundTextFields, customAttributesElement].join(", ")})`);
    }
  }
  return { ok: true, value: { ...fields, custom_attributes: customAttributes ?? emptyAttributes() } };
}

function readField(element: XmlElement, field: InboundTextField, where: string): Checked<string> {
  const text = leafText(element, `${where}: field ${field}`);
  if (!text.ok) return text;
  if (field === "severity") {
    const severity = text.value.trim().toLowerCase();
    if (!isSeverity(severity)) return problem(`${where}: field severity: ${quote(text.value)} is not one of ${severities.join(", ")}`);
    return { ok: true, value: severity };
  }
  if (field === "time_created") {
    const time = text.value.trim();
    if (!isIsoDateTime(time)) return problem(`${where}: field time_created: ${quote(text.value)} is not an ISO-8601 date-time (like 2024-03-05T14:07:31Z)`);
    return { ok: true, value: time };
  }
  return text;
}

/** `<custom_attributes>` of `<custom_attribute>` children → a null-prototype name → value map. */
function readCustomAttributes(element: XmlElement, where: string): Checked<Record<string, string>> {
  const shape = checkContainer(element, `${where}: ${customAttributesElement}`);
  if (shape !== null) return problem(shape);
  const attributes = emptyAttributes();
  for (const [index, child] of element.children.entries()) {
    const at = `${where}: custom_attribute ${index + 1}`;
    if (child.name !== "custom_attribute") return problem(`${where}: ${customAttributesElement}: unknown element <${child.name}>, expected <custom_attribute>`);
    const pair = readCustomAttribute(child, at);
    if (!pair.ok) return pair;
    if (Object.hasOwn(attributes, pair.value.name)) return problem(`${at}: custom attribute ${quote(pair.value.name)} given twice`);
    attributes[pair.value.name] = pair.value.value;
  }
  return { ok: true, value: attributes };
}

/** `<custom_attribute><name>N</name><value>V</value></custom_attribute>` or `name="N" value="V"`. */
function readCustomAttribute(element: XmlElement, where: string): Checked<{ name: string; value: string }> {
  const given: { name?: string; value?: string } = {};
  for (const [attribute, value] of Object.entries(element.attributes)) {
    if (attribute === "name" || attribute === "value") given[attribute] = value;
    else if (!isNamespaceDeclaration(attribute)) return problem(`${where}: unexpected attribute ${attribute}`);
  }
  if (!isBlank(element.text)) return problem(`${where}: text directly inside <custom_attribute>; use <name> and <value>`);
  for (const child of element.children) {
    const part = child.name;
    if (part !== "name" && part !== "value") return problem(`${where}: unknown element <${part}>, expected <name> or <value>`);
    if (given[part] !== undefined) return problem(`${where}: ${part} given twice`);
    const text = leafText(child, `${where}: ${part}`);
    if (!text.ok) return text;
    given[part] = text.value;
  }
  const name = given.name?.trim() ?? "";
  if (name === "") return problem(`${where}: missing or empty name`);
  return { ok: true, value: { name, value: given.value ?? "" } };
}

/** An element that holds only elements: no stray text, no attributes beyond xmlns. Null when fine. */
function checkContainer(element: XmlElement, where: string): string | null {
  const attribute = Object.keys(element.attributes).find((name) => !isNamespaceDeclaration(name));
  if (attribute !== undefined) return `${where}: unexpected attribute ${attribute} on <${element.name}>`;
  if (!isBlank(element.text)) return `${where}: text directly inside <${element.name}>; values go in child elements`;
  return null;
}

/** The text of an element that must hold only text (no child elements, no attributes beyond xmlns). */
function leafText(element: XmlElement, where: string): Checked<string> {
  const child = element.children[0];
  if (child !== undefined) return problem(`${where}: must hold text, not elements (found <${child.name}>)`);
  const attribute = Object.keys(element.attributes).find((name) => !isNamespaceDeclaration(name));
  if (attribute !== undefined) return problem(`${where}: unexpected attribute ${attribute}`);
  return { ok: true, value: element.text };
}

/** The last text found valid: the events of one request usually share their time_created. */
let lastValidDateTime: string | null = null;

/**
 * The extended-format date-time of XML Schema's xs:dateTime (the profile OMi's data model uses):
 * `YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]`. Length is capped first, and the pattern has no
 * nested or adjacent unbounded repeats, so matching is linear.
 */
export function isIsoDateTime(value: string): boolean {
  if (value === lastValidDateTime) return true;
  if (value.length > 64) return false;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))?$/.exec(value);
  if (match === null) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const offsetHours = Number(match[7] ?? 0);
  const offsetMinutes = Number(match[8] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (offsetHours > 14 || offsetMinutes > 59) return false;
  lastValidDateTime = value;
  return true;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isNamespaceDeclaration(attribute: string): boolean {
  return attribute === "xmlns" || attribute.startsWith("xmlns:");
}

/** Only XML's own whitespace: other blanks (NBSP…) are data and must not vanish. */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit !== 0x20 && unit !== 0x09 && unit !== 0x0a && unit !== 0x0d) return false;
  }
  return true;
}

/** A value for an error message, cut short: messages must not echo a megabyte back. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

function emptyAttributes(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

function problem(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
