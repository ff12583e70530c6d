/** OprEvents to and from OMi's event XML (server/connector/events/omi-xml.ts). */
import { describe, expect, test } from "bun:test";
import { escapeText, omiNamespace, readOmiEvents, writeOmiEventList } from "../../../server/connector/events/omi-xml.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { readXml } from "../../../server/connector/events/xml-reader.ts";

const opr = (fields: Partial<OprEvent>): OprEvent => ({ ...emptyOprEvent(), ...fields });

function read(text: string): OprEvent[] {
  const parsed = readOmiEvents(text);
  if (!parsed.ok) throw new Error(`expected events, got: ${parsed.error}`);
  return parsed.events;
}

function refusal(text: string): string {
  const parsed = readOmiEvents(text);
  if (parsed.ok) throw new Error(`expected a refusal, got ${parsed.events.length} events`);
  return parsed.error;
}

const ns = `xmlns="${omiNamespace}"`;

describe("writeOmiEventList", () => {
  const cases: Array<[string, OprEvent[], string]> = [
    ["no events", [], `<event_list ${ns}></event_list>`],
    ["only a title; unset fields are left out", [opr({ title: "t" })], `<event_list ${ns}><event><title>t</title></event></event_list>`],
    ["an empty title is still written", [opr({})], `<event_list ${ns}><event><title></title></event></event_list>`],
    [
      "every field, in data model order",
      [
        {
          title: "Disk full",
          description: "/var at 99%",
          key: "db1:disk:/var",
          close_key_pattern: "db1:disk:/var:<*>",
          state: "open",
          severity: "critical",
          category: "Storage",
          subcategory: "Disk",
          application: "PostgreSQL",
          object: "/var",
          related_ci_hints: ["db1.example.com", "PostgreSQL@db1"],
          related_ci: "db1",
          time_created: "2024-03-05T14:07:31Z",
          custom_attributes: { team: "dba", ticket: "" },
          duplicate_count: 3,
        },
      ],
      `<event_list ${ns}><event><title>Disk full</title><description>/var at 99%</description><key>db1:disk:/var</key>` +
        `<close_key_pattern>db1:disk:/var:&lt;*&gt;</close_key_pattern><state>open</state><severity>critical</severity>` +
        `<category>Storage</category><subcategory>Disk</subcategory><application>PostgreSQL</application><object>/var</object>` +
        `<related_ci_hints><hint>db1.example.com</hint><hint>PostgreSQL@db1</hint></related_ci_hints><related_ci>db1</related_ci>` +
        `<time_created>2024-03-05T14:07:31Z</time_created><custom_attribute_list><custom_attribute><name>team</name><value>dba</value></custom_attribute>` +
        `<custom_attribute><name>ticket</name><value></value></custom_attribute></custom_attribute_list><duplicate_count>3</duplicate_count></event></event_list>`,
    ],
    [
      "two events",
      [opr({ title: "a", severity: "minor" }), opr({ title: "b", duplicate_count: 0 })],
      `<event_list ${ns}><event><title>a</title><severity>minor</severity></event><event><title>b</title><duplicate_count>0</duplicate_count></event></event_list>`,
    ],
  ];
  for (const [name, events, expected] of cases) {
    test(name, () => expect(writeOmiEventList(events)).toBe(expected));
  }

  const escapes: Array<[string, string, string]> = [
    ["plain text is returned as is", "plain text", "plain text"],
    ["markup characters", `a<b>&c"d'e`, `a&lt;b&gt;&amp;c"d'e`],
    ["']]>' cannot end anything", "x]]>y", "x]]&gt;y"],
    ["CR survives as a reference; LF and tab stay literal", "a\r\nb\tc", "a&#13;\nb\tc"],
    ["characters XML cannot carry become U+FFFD", "\u0000a\u001Fb\uFFFEc\uFFFF", "\uFFFDa\uFFFDb\uFFFDc\uFFFD"],
    ["lone surrogates become U+FFFD, pairs pass", "\uD800x\uDC00y😀", "\uFFFDx\uFFFDy😀"],
    ["a high surrogate at the very end", "x\uD83D", "x\uFFFD"],
  ];
  for (const [name, input, expected] of escapes) {
    test(`escapeText: ${name}`, () => expect(escapeText(input)).toBe(expected));
  }

  test("the output is a well-formed document in OMi's namespace", () => {
    const xml = readXml(writeOmiEventList([opr({ title: "x", custom_attributes: { a: "1" } })]));
    expect(xml.ok && xml.root.name).toBe("event_list");
    expect(xml.ok && xml.root.attributes["xmlns"]).toBe(omiNamespace);
  });
});

describe("write, then read: odd strings survive", () => {
  const odd = [
    `quotes " and ' and both "'`,
    "<tag attr='x'>not markup</tag>",
    "AT&T &amp; &lt; &#65; &unknown;",
    "]]> and <![CDATA[ x ]]>",
    "unicode: Grüße, 日本語, مرحبا, 😀👩‍👩‍👧",
    "newlines\nLF\r\nCRLF\rCR\tand tabs",
    "  leading and trailing spaces  ",
    "<!DOCTYPE x [<!ENTITY a 'b'>]>",
    "<?php echo 1; ?> <!-- comment -->",
  ];
  const cases: Array<[string, OprEvent[]]> = [
    ...odd.map((value, i): [string, OprEvent[]] => [
      `string ${i + 1} in every field`,
      [
        {
          title: value,
          description: value,
          key: value,
          close_key_pattern: value,
          state: "resolved",
          severity: "warning",
          category: value,
          subcategory: value,
          application: value,
          object: value,
          related_ci_hints: [value, value],
          related_ci: value,
          time_created: value,
          custom_attributes: { [value]: value, plain: value },
          duplicate_count: i,
        },
      ],
    ]),
    ["several events, fields partly set", [opr({ title: "a" }), opr({ title: "b", key: "k", related_ci_hints: ["h"] }), opr({ title: "", custom_attributes: { x: "" } })]],
    ["a custom attribute named constructor", [opr({ title: "p", custom_attributes: { constructor: "c", toString: "s" } })]],
  ];
  for (const [name, events] of cases) {
    test(name, () => expect(read(writeOmiEventList(events))).toEqual(events));
  }

  test("a custom attribute named __proto__ comes back as data", () => {
    const attributes = Object.create(null) as Record<string, string>;
    attributes["__proto__"] = "p";
    const [event] = read(writeOmiEventList([opr({ title: "t", custom_attributes: attributes })]));
    expect(Object.keys(event!.custom_attributes)).toEqual(["__proto__"]);
    expect(event!.custom_attributes["__proto__"]).toBe("p");
  });
});

describe("readOmiEvents", () => {
  const cases: Array<[string, string, OprEvent[]]> = [
    ["one <event> root without a namespace", "<event><title>t</title><severity>Major</severity></event>", [opr({ title: "t", severity: "major" })]],
    ["one <event> root in OMi's namespace", `<event ${ns}><title>t</title></event>`, [opr({ title: "t" })]],
    [
      "a prefixed list in OMi's namespace",
      `<opr:event_list xmlns:opr="${omiNamespace}"><opr:event><opr:title>t</opr:title><opr:related_ci_hints><opr:hint>h</opr:hint></opr:related_ci_hints></opr:event></opr:event_list>`,
      [opr({ title: "t", related_ci_hints: ["h"] })],
    ],
    ["an empty list", "<event_list/>", []],
    [
      "elements outside our subset are skipped (OMi lists carry many more)",
      `<event_list ${ns}><event><id>2b4c</id><title>t</title><time_received>2024-03-05T14:07:32Z</time_received>` +
        `<annotation_list><annotation><text>x</text></annotation></annotation_list><state>in_progress</state></event><link href="next"/></event_list>`,
      [opr({ title: "t", state: "in_progress" })],
    ],
    [
      "a pretty-printed event",
      `<event_list>\n  <event>\n    <title>t</title>\n    <duplicate_count> 12 </duplicate_count>\n    <custom_attribute_list>\n      <custom_attribute>\n        <name>a</name>\n        <value>1</value>\n      </custom_attribute>\n    </custom_attribute_list>\n  </event>\n</event_list>`,
      [opr({ title: "t", duplicate_count: 12, custom_attributes: { a: "1" } })],
    ],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => expect(read(input)).toEqual(expected));
  }

  const refusals: Array<[string, string, string]> = [
    ["another namespace", '<event_list xmlns="urn:other"><event><title>t</title></event></event_list>', "root <event_list> is in namespace urn:other, expected http://www.hp.com/2009/software/opr/data_model or none"],
    ["another root", "<event_data><title>t</title></event_data>", "root <event_data> is neither <event> nor <event_list>"],
    ["a field given twice", "<event_list><event><title>a</title></event><event><key>a</key><key>b</key></event></event_list>", "event 2: field key given twice"],
    ["an unknown severity", "<event><severity>fatal</severity></event>", 'event 1: field severity: "fatal" is not one of unknown, normal, warning, minor, major, critical'],
    ["an unknown state", "<event><state>done</state></event>", 'event 1: field state: "done" is not one of open, in_progress, resolved, closed'],
    ["a negative duplicate_count", "<event><duplicate_count>-1</duplicate_count></event>", 'event 1: field duplicate_count: "-1" is not a non-negative integer'],
    ["a fractional duplicate_count", "<event><duplicate_count>1.5</duplicate_count></event>", "field duplicate_count"],
    ["hints given twice", "<event><related_ci_hints/><related_ci_hints/></event>", "event 1: field related_ci_hints given twice"],
    [
      "a custom attribute without a name",
      "<event><custom_attribute_list><custom_attribute><value>v</value></custom_attribute></custom_attribute_list></event>",
      "event 1: custom_attribute 1: missing or empty name",
    ],
    [
      "the same custom attribute twice",
      "<event><custom_attribute_list><custom_attribute><name>a</name></custom_attribute><custom_attribute><name>a</name></custom_attribute></custom_attribute_list></event>",
      'event 1: custom attribute "a" given twice',
    ],
    ["a DTD", '<!DOCTYPE event [<!ENTITY x SYSTEM "file:///etc/passwd">]><event><title>&x;</title></event>', "DOCTYPE is not allowed"],
    ["a syntax error with its position", "<event_list>\n<event><title>x</title>", "unclosed element <event> (at 2:1)"],
  ];
  for (const [name, input, fragment] of refusals) {
    test(`refuses ${name}`, () => expect(refusal(input)).toContain(fragment));
  }
});
