/**
 * @module The two event shapes the connector handles: what integrations send in (`<event_data>` of
 * the REST Web Service Listener, and the same fields from JSON) and what goes out to OMi (an
 * OprEvent of the `opr/data_model` event web service). Plain data, no behaviour beyond type guards:
 * parsers (event-xml.ts, omi-xml.ts) and the policy engine meet here.
 */

/** OMi's severities, least to most severe. */
export const severities = ["unknown", "normal", "warning", "minor", "major", "critical"] as const;
export type Severity = (typeof severities)[number];

/** OMi's event life-cycle states. */
export const eventStates = ["open", "in_progress", "resolved", "closed"] as const;
export type EventState = (typeof eventStates)[number];

export function isSeverity(value: string): value is Severity {
  return (severities as readonly string[]).includes(value);
}

export function isEventState(value: string): value is EventState {
  return (eventStates as readonly string[]).includes(value);
}

/**
 * One inbound event, as the `<event_data>` fields real integrations send. Every field is optional
 * (an absent field is missing, not empty: `<title/>` gives ""); policies fill in defaults.
 */
export interface InboundEvent {
  title?: string;
  description?: string;
  /** One of `severities` once parsed from XML (normalized to lower case). */
  severity?: string;
  /** Free text: the source's notion of state; policies map it. */
  state?: string;
  /** ISO-8601 date-time as sent (validated by the XML parser, not normalized). */
  time_created?: string;
  category?: string;
  subcategory?: string;
  /** Event type indicator, `Indicator:Value`. */
  eti?: string;
  /** Host the event is about. */
  node?: string;
  related_ci?: string;
  subcomponent?: string;
  /** The CI as the source system names it. */
  source_ci?: string;
  /** The event's id in the source system (back-sync addresses it by this). */
  source_event_id?: string;
  source_event_url?: string;
  /** OMi duplicate-suppression key proposed by the source. */
  omi_event_key?: string;
  /**
   * Name → value. Null-prototype when built by the parsers: names come from untrusted input, and a
   * lookup of "constructor" or "__proto__" must find only what was sent.
   */
  custom_attributes: Record<string, string>;
}

/** The optional string fields of InboundEvent; a Record so the compiler proves the list complete. */
const inboundTextFieldSet: Record<Exclude<keyof InboundEvent, "custom_attributes">, true> = {
  title: true,
  description: true,
  severity: true,
  state: true,
  time_created: true,
  category: true,
  subcategory: true,
  eti: true,
  node: true,
  related_ci: true,
  subcomponent: true,
  source_ci: true,
  source_event_id: true,
  source_event_url: true,
  omi_event_key: true,
};

export type InboundTextField = keyof typeof inboundTextFieldSet;

/** In REFERENCE order, for messages. */
export const inboundTextFields = Object.keys(inboundTextFieldSet) as readonly InboundTextField[];

export function isInboundTextField(name: string): name is InboundTextField {
  return Object.hasOwn(inboundTextFieldSet, name);
}

/**
 * One event for OMi's event web service (namespace `http://www.hp.com/2009/software/opr/data_model`).
 * String fields are always present; "" means "not set" and the XML writer leaves such an element
 * out (title excepted: OMi requires one), so OMi applies its own default instead of an empty value.
 */
export interface OprEvent {
  title: string;
  description: string;
  /** Duplicate-suppression key: OMi updates the active event with the same key. */
  key: string;
  /** Closes the active events whose key matches (OMi pattern syntax). */
  close_key_pattern: string;
  /** One of `eventStates` (or ""). */
  state: string;
  /** One of `severities` (or ""). */
  severity: string;
  category: string;
  subcategory: string;
  application: string;
  object: string;
  /** Hints OMi resolves to a related CI (for example the node's host name). */
  related_ci_hints: string[];
  related_ci: string;
  /** ISO-8601 date-time. */
  time_created: string;
  /** Name → value; null-prototype when built by the parsers (see InboundEvent). */
  custom_attributes: Record<string, string>;
  /** How many duplicates OMi folded into this event (it reports this); non-negative integer. */
  duplicate_count?: number;
}

type OprStringKey = { [K in keyof OprEvent]-?: OprEvent[K] extends string ? K : never }[keyof OprEvent];

/** The string fields of OprEvent; a Record so the compiler proves the list complete. */
const oprTextFieldSet: Record<OprStringKey, true> = {
  title: true,
  description: true,
  key: true,
  close_key_pattern: true,
  state: true,
  severity: true,
  category: true,
  subcategory: true,
  application: true,
  object: true,
  related_ci: true,
  time_created: true,
};

export type OprTextField = OprStringKey;

export const oprTextFields = Object.keys(oprTextFieldSet) as readonly OprTextField[];

export function isOprTextField(name: string): name is OprTextField {
  return Object.hasOwn(oprTextFieldSet, name);
}

/** An OprEvent with nothing set, for builders that fill it in field by field. */
export function emptyOprEvent(): OprEvent {
  return {
    title: "",
    description: "",
    key: "",
    close_key_pattern: "",
    state: "",
    severity: "",
    category: "",
    subcategory: "",
    application: "",
    object: "",
    related_ci_hints: [],
    related_ci: "",
    time_created: "",
    custom_attributes: Object.create(null) as Record<string, string>,
  };
}
