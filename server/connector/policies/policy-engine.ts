/**
 * @module The event policy engine: one inbound record (an `<event_data>` event via `recordOf`, or a
 * record `mapJson` made from JSON) and one validated policy in, one outcome out: an OprEvent to send,
 * suppressed, or ignored. Rules run in order and the first whose condition matches wins (REFERENCE
 * "Inbound: REST Web Service Listener policies"). Pure: no I/O, and the clock comes in as `nowMs`,
 * so every node of the HA group turns the same input into the same event.
 *
 * How an event is built, lowest precedence first:
 *  1. the record's own fields (see `fromRecord` for how event_data fields land on OprEvent fields);
 *  2. the policy's `defaults`, only where the record left a field empty;
 *  3. the winning rule's `set`, which overrides;
 *  4. `severity_map.SOURCE` entries (defaults and set merged, set winning) translate the resulting
 *     severity; then severity, state, time_created and title get their guaranteed values.
 * Setting keys are OprEvent field names, `custom_attributes.NAME` or `severity_map.SOURCE`;
 * string values are templates over the input record (`${labels.instance}`).
 */
import { assert, unreachable } from "../../assert.ts";
import type { Condition, Policy, Rule, ScalarValue } from "../../config/model/types.ts";
import { configLimits } from "../../constants.ts";
import { isEventState, isSeverity, oprTextFields, type InboundEvent, type OprEvent, type OprTextField } from "../events/event-record.ts";
import { substitute, textOf, valueAt } from "./json-mapping.ts";

export type Outcome = { readonly kind: "send"; readonly event: OprEvent; readonly rule: string | null } | { readonly kind: "suppressed"; readonly rule: string | null } | { readonly kind: "ignored" };

/** Hints taken from one record: OMi resolves a handful, never hundreds. */
export const relatedCiHintsMax = 64;
export const untitled = "(no title)";

const attributePrefix = "custom_attributes.";
const severityMapPrefix = "severity_map.";
/** event_data fields with no OprEvent counterpart, kept as custom attributes of the same name. */
const keptAsAttributes = ["eti", "source_ci", "source_event_id", "source_event_url"] as const;
/** Decimal notation only: "0x10", "Infinity" and "" are text, not numbers. */
const numericPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The record the engine evaluates for an XML event: fields by name, `custom_attributes.NAME` reachable. */
export function recordOf(event: InboundEvent): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== "custom_attributes" && typeof value === "string") record[name] = value;
  }
  // Null prototype, like the parsers build it: attribute names are untrusted input.
  record.custom_attributes = Object.assign(Object.create(null) as Record<string, string>, event.custom_attributes);
  return record;
}

/** Runs a validated policy over one record. */
export function evaluate(policy: Policy, record: Record<string, unknown>, options: { readonly nowMs: number }): Outcome {
  assert(Number.isFinite(options.nowMs), "nowMs is a finite time");
  assert(policy.rules.length <= configLimits.rulesPerPolicyMax, "a validated policy has bounded rules");
  const regexes = regexesOf(policy);
  const rule = policy.rules.find((r) => r.if === undefined || matches(r.if, record, { regexes, depth: 1 }));
  if (rule !== undefined) {
    switch (rule.action) {
      case "send":
        return { kind: "send", event: buildEvent(policy, record, { rule, nowMs: options.nowMs }), rule: rule.name };
      case "suppress":
        return { kind: "suppressed", rule: rule.name };
      default:
        return unreachable(rule.action);
    }
  }
  switch (policy.unmatched) {
    case "send":
      return { kind: "send", event: buildEvent(policy, record, { rule: null, nowMs: options.nowMs }), rule: null };
    case "ignore":
      return { kind: "ignored" };
    default:
      return unreachable(policy.unmatched);
  }
}

/** Why a `defaults`/`set` key means nothing to the engine (which ignores it), or null when it is one. */
export function settingKeyProblem(key: string): string | null {
  if (key.startsWith(attributePrefix) || key.startsWith(severityMapPrefix) || key === "related_ci_hints" || isTextField(key)) return null;
  return `is not an event field (${oprTextFields.join(", ")}, related_ci_hints), custom_attributes.NAME or severity_map.SOURCE`;
}

// ---- conditions ----

/** Compiled once per policy object: a policy is immutable, and a new deployment brings new objects. */
const regexCache = new WeakMap<Policy, Map<string, RegExp>>();

function regexesOf(policy: Policy): Map<string, RegExp> {
  let regexes = regexCache.get(policy);
  if (regexes === undefined) {
    regexes = new Map();
    regexCache.set(policy, regexes);
  }
  return regexes;
}

interface MatchContext {
  readonly regexes: Map<string, RegExp>;
  readonly depth: number;
}

function matches(condition: Condition, record: Record<string, unknown>, context: MatchContext): boolean {
  assert(context.depth <= configLimits.conditionDepthMax, "validated conditions nest within the limit");
  const inner: MatchContext = { regexes: context.regexes, depth: context.depth + 1 };
  if ("and" in condition) return condition.and.every((c) => matches(c, record, inner));
  if ("or" in condition) return condition.or.some((c) => matches(c, record, inner));
  if ("not" in condition) return !matches(condition.not, record, inner);
  const value = valueAt(record, condition.field);
  // JSON null counts as absent: webhooks write null for a field they do not set.
  if ("exists" in condition) return (value !== undefined && value !== null) === condition.exists;
  // Structures, null and missing fields match no comparison: there is no one text or number to compare.
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return false;
  if ("equals" in condition) return scalarEquals(value, condition.equals);
  if ("regex" in condition) return compiled(context.regexes, condition.regex).test(String(value));
  const number = numberOf(value);
  if (number === null) return false;
  if ("gt" in condition) return number > condition.gt;
  if ("gte" in condition) return number >= condition.gte;
  if ("lt" in condition) return number < condition.lt;
  if ("lte" in condition) return number <= condition.lte;
  return unreachable(condition);
}

/** Numbers compare numerically when both sides are numeric ("5.0" equals 5); otherwise as text. */
function scalarEquals(value: string | number | boolean, operand: string | number | boolean): boolean {
  const left = numberOf(value);
  const right = numberOf(operand);
  if (left !== null && right !== null) return left === right;
  return String(value) === String(operand);
}

function numberOf(value: string | number | boolean): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && numericPattern.test(value.trim())) return Number(value);
  return null;
}

function compiled(regexes: Map<string, RegExp>, source: string): RegExp {
  let regex = regexes.get(source);
  if (regex === undefined) {
    // parseModel compiled it once already; no flags, so test() keeps no lastIndex state.
    regex = new RegExp(source);
    regexes.set(source, regex);
  }
  return regex;
}

// ---- building the event ----

/** An event under construction; "" means "not set", as in OprEvent. */
interface Draft {
  readonly fields: Record<OprTextField, string>;
  hints: string[];
  readonly attributes: Record<string, string>;
  /** Source severity → OMi severity; null until a setting names one. */
  severityMap: Map<string, string> | null;
}

function buildEvent(policy: Policy, record: Record<string, unknown>, options: { rule: Rule | null; nowMs: number }): OprEvent {
  const draft = fromRecord(record);
  applySettings(draft, compiledSettings(policy.defaults), record, false);
  if (options.rule?.set !== undefined) applySettings(draft, compiledSettings(options.rule.set), record, true);
  const { fields } = draft;
  const severity = (draft.severityMap?.get(fields.severity) ?? fields.severity).trim().toLowerCase();
  const state = fields.state.trim().toLowerCase();
  const event: OprEvent = {
    ...fields,
    title: fields.title === "" ? untitled : fields.title,
    severity: isSeverity(severity) ? severity : "unknown",
    state: isEventState(state) ? state : "open",
    time_created: fields.time_created === "" ? isoAt(options.nowMs) : fields.time_created,
    related_ci_hints: draft.hints,
    custom_attributes: draft.attributes,
  };
  assert(event.title !== "" && isSeverity(event.severity) && isEventState(event.state), "an outgoing event has a title, a severity and a state");
  return event;
}

/**
 * The record's own fields. OprEvent field names are taken as they are; event_data fields map as:
 * omi_event_key → key and subcomponent → object (when the record has no key/object of its own),
 * node → related_ci_hints (after any hints the record carries), eti, source_ci, source_event_id and
 * source_event_url → custom attributes of the same name (an explicit custom attribute wins), and
 * the record's custom_attributes → custom attributes. Scalars become text; structures are skipped.
 */
function fromRecord(record: Record<string, unknown>): Draft {
  // Written out rather than a loop over oprTextFields: reads by computed names cannot be specialised
  // by the JIT, and this runs for every event (the compiler checks the list is complete).
  const fields: Record<OprTextField, string> = {
    title: scalarText(record["title"]),
    description: scalarText(record["description"]),
    key: scalarText(record["key"]),
    close_key_pattern: scalarText(record["close_key_pattern"]),
    state: scalarText(record["state"]),
    severity: scalarText(record["severity"]),
    category: scalarText(record["category"]),
    subcategory: scalarText(record["subcategory"]),
    application: scalarText(record["application"]),
    object: scalarText(record["object"]),
    related_ci: scalarText(record["related_ci"]),
    time_created: scalarText(record["time_created"]),
  };
  if (fields.key === "") fields.key = scalarText(valueAt(record, "omi_event_key"));
  if (fields.object === "") fields.object = scalarText(valueAt(record, "subcomponent"));
  const attributes = Object.create(null) as Record<string, string>;
  const given = valueAt(record, "custom_attributes");
  // An inbound object's size is bounded by the request body limit, not counted here. Own
  // enumerable names in Object.entries' order, without its array of pairs.
  if (typeof given === "object" && given !== null && !Array.isArray(given)) {
    for (const name in given) {
      if (!Object.hasOwn(given, name)) continue;
      const value = scalarText((given as Record<string, unknown>)[name]);
      if (value !== "") attributes[name] = value;
    }
  }
  for (const name of keptAsAttributes) {
    const value = scalarText(valueAt(record, name));
    if (value !== "" && !Object.hasOwn(attributes, name)) attributes[name] = value;
  }
  return { fields, hints: hintsOf(record), attributes, severityMap: null };
}

/** The events of one request share their clock: its text is made once, not per event. */
let lastIso: { readonly ms: number; readonly text: string } = { ms: Number.NaN, text: "" };

function isoAt(ms: number): string {
  if (lastIso.ms !== ms) lastIso = { ms, text: new Date(ms).toISOString() };
  return lastIso.text;
}

function hintsOf(record: Record<string, unknown>): string[] {
  const given = valueAt(record, "related_ci_hints");
  const node = scalarText(valueAt(record, "node"));
  const hints: string[] = [];
  if (Array.isArray(given)) {
    for (let i = 0; i < given.length && i < relatedCiHintsMax; i++) {
      const hint = scalarText(given[i]);
      if (hint !== "") hints.push(hint);
    }
  } else {
    const hint = scalarText(given);
    if (hint !== "") hints.push(hint);
  }
  if (node !== "" && !hints.includes(node) && hints.length < relatedCiHintsMax) hints.push(node);
  return hints;
}

/** Text of a scalar; "" for anything else (missing, null, objects, arrays). */
function scalarText(value: unknown): string {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? textOf(value) : "";
}

/**
 * A `defaults` or `set` map as the engine runs it, in the map's order: what each key targets, and its
 * value as text when it holds no placeholder. Made once per map (a policy is immutable), so an event
 * costs no key parsing and a constant costs no substitution.
 */
type CompiledSetting =
  | { readonly target: "severity-map" | "attribute"; readonly name: string; readonly template: string; readonly constant: string | null }
  | { readonly target: "hints"; readonly template: string; readonly constant: string | null }
  | { readonly target: "field"; readonly name: OprTextField; readonly template: string; readonly constant: string | null };

const compiledCache = new WeakMap<object, readonly CompiledSetting[]>();

function compiledSettings(settings: Readonly<Record<string, ScalarValue>>): readonly CompiledSetting[] {
  let compiled = compiledCache.get(settings);
  if (compiled !== undefined) return compiled;
  const entries = Object.entries(settings);
  assert(entries.length <= configLimits.mapEntriesMax, "a validated settings map is bounded");
  const out: CompiledSetting[] = [];
  for (const [key, setting] of entries) {
    const template = typeof setting === "number" ? String(setting) : setting;
    const constant = typeof setting === "number" || !setting.includes("${") ? substitute(template, {}) : null;
    // Not a field but a translation, so `set` entries join the defaults' (replacing one per source).
    if (key.startsWith(severityMapPrefix)) out.push({ target: "severity-map", name: key.slice(severityMapPrefix.length), template, constant });
    else if (key.startsWith(attributePrefix)) out.push({ target: "attribute", name: key.slice(attributePrefix.length), template, constant });
    else if (key === "related_ci_hints") out.push({ target: "hints", template, constant });
    else if (isTextField(key)) out.push({ target: "field", name: key, template, constant });
    // Any other key names nothing the engine knows; settingKeyProblem lets a validator report it.
  }
  compiledCache.set(settings, (compiled = out));
  return compiled;
}

/** Applies `defaults` (override false: only where the draft is empty) or a rule's `set` (override true). */
function applySettings(draft: Draft, settings: readonly CompiledSetting[], record: Record<string, unknown>, override: boolean): void {
  for (const setting of settings) {
    const value = setting.constant ?? substitute(setting.template, record);
    switch (setting.target) {
      case "severity-map":
        (draft.severityMap ??= new Map()).set(setting.name, value);
        break;
      case "attribute":
        if (override || !Object.hasOwn(draft.attributes, setting.name)) draft.attributes[setting.name] = value;
        break;
      case "hints":
        if (override || draft.hints.length === 0) draft.hints = value === "" ? [] : [value];
        break;
      case "field":
        if (override || draft.fields[setting.name] === "") draft.fields[setting.name] = value;
        break;
      default:
        unreachable(setting);
    }
  }
}

function isTextField(key: string): key is OprTextField {
  return (oprTextFields as readonly string[]).includes(key);
}
