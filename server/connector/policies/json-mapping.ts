/**
 * @module The generic JSON input mode of event policies: a policy's `mapping` turns any JSON
 * document (a webhook from any domain manager) into flat records the policy engine evaluates, one
 * per element of the `each` array, so an integration needs configuration, not code. Pure.
 *
 * Also home of the two path primitives the engine shares with it: `valueAt` (a dotted path into
 * parsed JSON, numeric segments indexing arrays) and `substitute` (`${dotted.path}` templates).
 */
import { assert } from "../../assert.ts";
import type { FieldSource, Mapping } from "../../config/model/types.ts";

/** Records one document may yield: one inbound request must not become an unbounded batch. */
export const mappingRecordsMax = 10_000;

/**
 * Longest text a template produces. A template may repeat a large field many times; without a cap
 * one request body could multiply into gigabytes of event text.
 */
export const templateCharsMax = 64 * 1024;

/** Segments of one dotted path; validated paths are at most 4096 characters, so far fewer. */
const pathSegmentsMax = 2048;

export type MappingResult = { readonly ok: true; readonly records: Record<string, unknown>[] } | { readonly ok: false; readonly error: string };

const arrayIndexPattern = /^(0|[1-9][0-9]*)$/;

/**
 * The value at a dotted path, or undefined when any step is missing. Only own properties count:
 * a path like `constructor` must never reach Object.prototype.
 */
export function valueAt(root: unknown, path: string): unknown {
  assert(path !== "", "a field path is non-empty");
  // Most paths are one field name (the engine reads a dozen per event): no split, no array.
  if (!path.includes(".")) return childOf(root, path);
  const segments = path.split(".");
  assert(segments.length <= pathSegmentsMax, "a field path is bounded");
  let current: unknown = root;
  for (const segment of segments) {
    current = childOf(current, segment);
    if (current === undefined) return undefined;
  }
  return current;
}

function childOf(current: unknown, segment: string): unknown {
  if (Array.isArray(current)) return arrayIndexPattern.test(segment) ? current[Number(segment)] : undefined;
  if (typeof current === "object" && current !== null && Object.hasOwn(current, segment)) return (current as Record<string, unknown>)[segment];
  return undefined;
}

/** How a looked-up value reads inside text: absent and null read as nothing, structures as JSON. */
export function textOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return JSON.stringify(value) ?? "";
}

/**
 * Replaces every `${dotted.path}` with the text of that path in `root` (missing → ""). A "${"
 * without a closing "}" stays as written: validated templates never hold one.
 */
export function substitute(template: string, root: unknown): string {
  let out = "";
  let from = 0;
  // Each turn consumes at least the 3 characters of "${}", so the loop ends within the text.
  for (let step = 0; step <= template.length && out.length <= templateCharsMax; step++) {
    const open = template.indexOf("${", from);
    const close = open < 0 ? -1 : template.indexOf("}", open + 2);
    if (close < 0) return cap(out + template.slice(from));
    const path = template.slice(open + 2, close);
    out += template.slice(from, open) + (path === "" ? "" : textOf(valueAt(root, path)));
    from = close + 1;
  }
  return cap(out);
}

function cap(text: string): string {
  return text.length <= templateCharsMax ? text : text.slice(0, templateCharsMax);
}

/** Maps a parsed JSON document to records; fails (naming the path) when `each` is not a bounded array. */
export function mapJson(document: unknown, mapping: Mapping): MappingResult {
  if (mapping.each === undefined) return mapElements([document], mapping);
  const elements = valueAt(document, mapping.each);
  if (elements === undefined) return { ok: false, error: `mapping.each: path '${mapping.each}' is not in the document` };
  if (!Array.isArray(elements)) return { ok: false, error: `mapping.each: path '${mapping.each}' holds ${describe(elements)}, not an array` };
  if (elements.length > mappingRecordsMax) {
    return { ok: false, error: `mapping.each: path '${mapping.each}' holds ${elements.length} elements; at most ${mappingRecordsMax} records per document` };
  }
  return mapElements(elements, mapping);
}

function mapElements(elements: readonly unknown[], mapping: Mapping): MappingResult {
  assert(elements.length <= mappingRecordsMax, "element count checked by the caller");
  const records: Record<string, unknown>[] = [];
  for (const element of elements) {
    const record = mapElement(element, mapping.fields);
    if (!record.ok) return record;
    records.push(record.record);
  }
  assert(records.length === elements.length, "one record per element");
  return { ok: true, records };
}

function mapElement(element: unknown, fields: Mapping["fields"]): { ok: true; record: Record<string, unknown> } | { ok: false; error: string } {
  const record: Record<string, unknown> = {};
  for (const [target, source] of Object.entries(fields)) {
    const value = sourceValue(element, source);
    // An absent source leaves the field absent, so `exists` conditions and defaults see the gap.
    if (value === undefined) continue;
    if (!place(record, target, value)) return { ok: false, error: `mapping.fields.${target}: another field already set a value where '${target}' needs an object` };
  }
  return { ok: true, record };
}

function sourceValue(element: unknown, source: FieldSource): unknown {
  if (typeof source !== "string") return source.const;
  return source.includes("${") ? substitute(source, element) : valueAt(element, source);
}

/**
 * Sets a dotted target (`custom_attributes.team`) as nested objects, so records read the same way
 * whether they came from XML (`recordOf`) or from a mapping. False when a scalar is in the way.
 */
function place(record: Record<string, unknown>, target: string, value: unknown): boolean {
  const segments = target.split(".");
  assert(segments.length <= pathSegmentsMax, "a target path is bounded");
  let parent = record;
  for (const segment of segments.slice(0, -1)) {
    assertSafeKey(segment);
    if (!Object.hasOwn(parent, segment)) parent[segment] = {};
    const next = parent[segment];
    if (typeof next !== "object" || next === null || Array.isArray(next)) return false;
    parent = next as Record<string, unknown>;
  }
  const last = segments[segments.length - 1] as string;
  assertSafeKey(last);
  if (Object.hasOwn(parent, last) && typeof parent[last] === "object" && parent[last] !== null) return false;
  parent[last] = value;
  return true;
}

/** parseModel refuses these segments; one here would write to Object.prototype. */
function assertSafeKey(segment: string): void {
  assert(segment !== "__proto__" && segment !== "prototype" && segment !== "constructor", () => `mapping target segment '${segment}' is reserved`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
