/** `<event_data>` documents into InboundEvents (server/connector/events/event-xml.ts). */
import { describe, expect, test } from "bun:test";
import { isIsoDateTime, parseEventData } from "../../../server/connector/events/event-xml.ts";
import type { InboundEvent } from "../../../server/connector/events/event-record.ts";
import { xmlLimits } from "../../../server/constants.ts";

function events(text: string): InboundEvent[] {
  const parsed = parseEventData(text);
  if (!parsed.ok) throw new Error(`expected events, got: ${parsed.error}`);
  return parsed.events;
}

function refusal(text: string): string {
  const parsed = parseEventData(text);
  if (parsed.ok) throw new Error(`expected a refusal, got ${parsed.events.length} events`);
  return parsed.error;
}

const event = (body: string) => `<event_data>${body}</event_data>`;
const batch = (...bodies: string[]) => `<event_data_list>${bodies.map(event).join("")}</event_data_list>`;

const nagiosSample = `<?xml version="1.0" encoding="UTF-8"?>
<!-- sent by a Nagios notification command -->
<event_data>
  <title>CRITICAL: web01.example.com HTTP - Connection refused</title>
  <description><![CDATA[HTTP CRITICAL - Unable to open TCP socket
Check: check_http!-H web01 -u /health?x=1&y=2]]></description>
  <severity>CRITICAL</severity>
  <state>open</state>
  <time_created>2024-03-05T14:07:31+01:00</time_created>
  <category>Web</category>
  <subcategory>HTTP</subcategory>
  <eti>ServiceAvailability:Unavailable</eti>
  <node>web01.example.com</node>
  <related_ci>web01.example.com</related_ci>
  <subcomponent>HTTP</subcomponent>
  <source_ci>web01.example.com:HTTP</source_ci>
  <source_event_id>48213</source_event_id>
  <source_event_url>https://nagios.example.com/cgi-bin/extinfo.cgi?type=2&amp;host=web01&amp;service=HTTP</source_event_url>
  <omi_event_key>nagios:web01.example.com:HTTP</omi_event_key>
  <custom_attributes>
    <custom_attribute>
      <name>nagios_state_type</name>
      <value>HARD</value>
    </custom_attribute>
    <custom_attribute name="attempt" value="3/3"/>
  </custom_attributes>
</event_data>
`;

describe("parseEventData: accepted documents", () => {
  test("a realistic Nagios event with every field", () => {
    expect(events(nagiosSample)).toEqual([
      {
        title: "CRITICAL: web01.example.com HTTP - Connection refused",
        description: "HTTP CRITICAL - Unable to open TCP socket\nCheck: check_http!-H web01 -u /health?x=1&y=2",
        severity: "critical",
        state: "open",
        time_created: "2024-03-05T14:07:31+01:00",
        category: "Web",
        subcategory: "HTTP",
        eti: "ServiceAvailability:Unavailable",
        node: "web01.example.com",
        related_ci: "web01.example.com",
        subcomponent: "HTTP",
        source_ci: "web01.example.com:HTTP",
        source_event_id: "48213",
        source_event_url: "https://nagios.example.com/cgi-bin/extinfo.cgi?type=2&host=web01&service=HTTP",
        omi_event_key: "nagios:web01.example.com:HTTP",
        custom_attributes: { nagios_state_type: "HARD", attempt: "3/3" },
      },
    ]);
  });

  const cases: Array<[string, string, InboundEvent[]]> = [
    ["an event with no fields", "<event_data/>", [{ custom_attributes: {} }]],
    ["an empty field is present and empty", event("<title/><description></description>"), [{ title: "", description: "", custom_attributes: {} }]],
    ["values are verbatim, whitespace included", event("<title>  two  spaces \n</title>"), [{ title: "  two  spaces \n", custom_attributes: {} }]],
    ["severity is trimmed and lower-cased", event("<severity> Major\n</severity>"), [{ severity: "major", custom_attributes: {} }]],
    ["time_created is trimmed", event("<time_created>\n 2024-03-05T14:07:31Z \n</time_created>"), [{ time_created: "2024-03-05T14:07:31Z", custom_attributes: {} }]],
    ["state is free text", event("<state>ACKNOWLEDGED</state>"), [{ state: "ACKNOWLEDGED", custom_attributes: {} }]],
    [
      "a batch in <event_data_list>, order kept",
      batch("<title>a</title>", "<title>b</title>", "<title>c</title>"),
      ["a", "b", "c"].map((title) => ({ title, custom_attributes: {} })),
    ],
    [
      "a batch under any root name, with comments and whitespace between events",
      '<events count="2">\n  <!-- one -->\n  <event_data><node>n1</node></event_data>\n  <event_data><node>n2</node></event_data>\n</events>',
      [{ node: "n1", custom_attributes: {} }, { node: "n2", custom_attributes: {} }],
    ],
    [
      "namespace declarations are accepted anywhere",
      '<event_data xmlns="urn:x" xmlns:a="urn:a"><title xmlns="urn:x">t</title><custom_attributes xmlns="urn:x"/></event_data>',
      [{ title: "t", custom_attributes: {} }],
    ],
    [
      "custom attributes: names trimmed, values verbatim, a missing value is empty",
      event('<custom_attributes><custom_attribute><name> team </name><value> ops </value></custom_attribute><custom_attribute name="empty"/></custom_attributes>'),
      [{ custom_attributes: { team: " ops ", empty: "" } }],
    ],
    [
      "unicode and entities in values",
      event("<title>Ünïcødé 😀 &lt;tag&gt; &#x263A;</title>"),
      [{ title: "Ünïcødé 😀 <tag> ☺", custom_attributes: {} }],
    ],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => expect(events(input)).toEqual(expected));
  }

  test("every severity, in any case", () => {
    for (const severity of ["unknown", "normal", "warning", "minor", "major", "critical"]) {
      expect(events(event(`<severity>${severity.toUpperCase()}</severity>`))[0]?.severity).toBe(severity);
    }
  });

  test("custom attribute names that are Object.prototype members are plain data", () => {
    const attributes = events(event('<custom_attributes><custom_attribute name="__proto__" value="p"/><custom_attribute name="constructor" value="c"/></custom_attributes>'))[0]!.custom_attributes;
    expect(Object.keys(attributes)).toEqual(["__proto__", "constructor"]);
    expect(attributes["constructor"]).toBe("c");
    expect(attributes["toString"]).toBeUndefined();
    expect(events("<event_data/>")[0]!.custom_attributes["toString"]).toBeUndefined();
  });

  test(`a batch of ${xmlLimits.eventsPerRequestMax} events parses; one more is refused`, () => {
    const bodies = Array.from({ length: xmlLimits.eventsPerRequestMax }, (_, i) => `<title>e${i}</title><severity>minor</severity>`);
    const parsed = events(batch(...bodies));
    expect(parsed.length).toBe(xmlLimits.eventsPerRequestMax);
    expect(parsed[xmlLimits.eventsPerRequestMax - 1]).toEqual({ title: `e${xmlLimits.eventsPerRequestMax - 1}`, severity: "minor", custom_attributes: {} });
    expect(refusal(batch(...bodies, "<title>one too many</title>"))).toBe(`batch of ${xmlLimits.eventsPerRequestMax + 1} events exceeds ${xmlLimits.eventsPerRequestMax}`);
  });
});

describe("parseEventData: refusals name the event and the field", () => {
  const cases: Array<[string, string, string]> = [
    ["a typo in a field name", event("<titel>x</titel>"), "event 1: unknown element <titel> (fields: title, description, severity,"],
    ["a typo in the third event of a batch", batch("<title>a</title>", "<title>b</title>", "<sevrity>major</sevrity>"), "event 3: unknown element <sevrity>"],
    ["a field given twice", event("<title>a</title><title>b</title>"), "event 1: field title given twice"],
    ["custom_attributes given twice", event("<custom_attributes/><custom_attributes/>"), "event 1: field custom_attributes given twice"],
    ["an unknown severity", event("<severity>crit</severity>"), 'event 1: field severity: "crit" is not one of unknown, normal, warning, minor, major, critical'],
    ["an empty severity", batch("", "<severity/>"), 'event 2: field severity: "" is not one of'],
    ["a date without a time", event("<time_created>2024-03-05</time_created>"), 'event 1: field time_created: "2024-03-05" is not an ISO-8601 date-time'],
    ["a time that is not a date", event("<time_created>yesterday</time_created>"), 'event 1: field time_created: "yesterday"'],
    ["a very long bad value is cut short in the message", event(`<severity>${"x".repeat(1000)}</severity>`), `"${"x".repeat(64)}…" is not one of`],
    ["text directly inside <event_data>", event("oops<title>t</title>"), "event 1: text directly inside <event_data>"],
    ["an attribute on <event_data>", '<event_data id="7"><title>t</title></event_data>', "event 1: unexpected attribute id on <event_data>"],
    ["an attribute on a field", event('<title lang="en">t</title>'), "event 1: field title: unexpected attribute lang"],
    ["a field holding elements", event("<title><b>bold</b></title>"), "event 1: field title: must hold text, not elements (found <b>)"],
    ["a stray element in custom_attributes", event("<custom_attributes><team>ops</team></custom_attributes>"), "event 1: custom_attributes: unknown element <team>, expected <custom_attribute>"],
    ["text in custom_attributes", event("<custom_attributes>team=ops</custom_attributes>"), "event 1: custom_attributes: text directly inside <custom_attributes>"],
    ["a custom attribute without a name", event("<custom_attributes><custom_attribute><value>v</value></custom_attribute></custom_attributes>"), "event 1: custom_attribute 1: missing or empty name"],
    ["a custom attribute with a blank name", event('<custom_attributes><custom_attribute name="  " value="v"/></custom_attributes>'), "event 1: custom_attribute 1: missing or empty name"],
    [
      "a custom attribute named twice (attribute and element)",
      event('<custom_attributes><custom_attribute name="a"><name>b</name></custom_attribute></custom_attributes>'),
      "event 1: custom_attribute 1: name given twice",
    ],
    [
      "a custom attribute with two values",
      event("<custom_attributes><custom_attribute><name>a</name><value>1</value><value>2</value></custom_attribute></custom_attributes>"),
      "event 1: custom_attribute 1: value given twice",
    ],
    [
      "a custom attribute with an unknown part",
      event("<custom_attributes><custom_attribute><name>a</name><type>int</type></custom_attribute></custom_attributes>"),
      "event 1: custom_attribute 1: unknown element <type>, expected <name> or <value>",
    ],
    [
      "a custom attribute with an unknown attribute",
      event('<custom_attributes><custom_attribute name="a" type="int"/></custom_attributes>'),
      "event 1: custom_attribute 1: unexpected attribute type",
    ],
    [
      "the same custom attribute twice",
      event('<custom_attributes><custom_attribute name="a" value="1"/><custom_attribute><name>a</name></custom_attribute></custom_attributes>'),
      'event 1: custom_attribute 2: custom attribute "a" given twice',
    ],
    ["text in a custom attribute", event('<custom_attributes><custom_attribute name="a">1</custom_attribute></custom_attributes>'), "event 1: custom_attribute 1: text directly inside <custom_attribute>"],
    ["a name holding elements", event("<custom_attributes><custom_attribute><name><b/></name></custom_attribute></custom_attributes>"), "event 1: custom_attribute 1: name: must hold text, not elements"],
    ["a non-event element in a batch", `<events>${event("<title>a</title>")}<event><title>b</title></event></events>`, "event 2: <event> in <events>, expected <event_data>"],
    ["text in a batch", `<events>${event("")}stray</events>`, "text directly inside <events>: a batch holds only <event_data> elements"],
    ["an empty batch", "<event_data_list/>", "root <event_data_list> is neither <event_data> nor a list of <event_data> elements"],
    ["the wrong root", "<event><title>t</title></event>", "root <event> is neither <event_data> nor a list of <event_data> elements"],
    ["a syntax error is passed on with its position", `<event_data>\n<title>a & b</title></event_data>`, "'&' must start a reference (write &amp;) (at 2:10)"],
    ["a DTD", '<!DOCTYPE e [<!ENTITY x "y">]><event_data><title>&x;</title></event_data>', "DOCTYPE is not allowed"],
  ];
  for (const [name, input, fragment] of cases) {
    test(name, () => expect(refusal(input)).toContain(fragment));
  }
});

describe("isIsoDateTime", () => {
  // The check remembers the last valid text, and must not start out treating "" as that text (an
  // empty <time_created> was accepted on a fresh process): a fresh instance of the module.
  test("refuses the empty text, before and after a valid date-time", async () => {
    const fresh = (await import(`../../../server/connector/events/event-xml.ts?fresh=${Date.now()}`)) as { isIsoDateTime: (value: string) => boolean };
    expect(fresh.isIsoDateTime("")).toBe(false);
    expect(isIsoDateTime("")).toBe(false);
    expect(isIsoDateTime("2026-11-24T10:00:00Z")).toBe(true);
    expect(isIsoDateTime("")).toBe(false);
    expect(isIsoDateTime("2026-11-24T10:00:00Z")).toBe(true);
  });

  const valid = ["2024-03-05T14:07:31Z", "2024-03-05T14:07:31.123456789+01:00", "2024-03-05T14:07:31-05:30", "2024-03-05T14:07:31", "2024-02-29T00:00:00Z", "2000-02-29T23:59:59Z", "1999-12-31T23:59:59+14:00"];
  const invalid = [
    "2024-03-05",
    "2024-03-05 14:07:31",
    "2024-03-05T14:07",
    "2024-03-05T14:07:31+0100",
    "20240305T140731Z",
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-03-05T24:00:00Z",
    "2024-03-05T14:60:00Z",
    "2024-03-05T14:07:60Z",
    "2024-03-05T14:07:31+15:00",
    "2024-03-05T14:07:31.Z",
    "1709647651",
    "",
    `2024-03-05T14:07:31.${"1".repeat(60)}Z`,
  ];
  for (const value of valid) test(`accepts ${value}`, () => expect(isIsoDateTime(value)).toBe(true));
  for (const value of invalid) test(`refuses ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`, () => expect(isIsoDateTime(value)).toBe(false));
});
