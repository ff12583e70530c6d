/**
 * @module A small, strict XML reader for untrusted request bodies (event XML from integrations,
 * OMi's event lists). It builds a plain element tree and nothing else.
 *
 * Safety by refusal rather than by configuration: any DTD (`<!DOCTYPE`) or other `<!` declaration is
 * an error, so no entity is ever declared, expanded or fetched: billion-laughs and external-entity
 * documents fail at their first DTD byte. Only the five predefined entities and numeric character
 * references are decoded. Processing instructions other than the leading XML declaration are
 * refused too. Every size is bounded by `xmlLimits`, and the reader is one forward pass over the
 * text (plus `indexOf` for comment and CDATA ends), so time is linear in the input; no regular
 * expression ever runs on it. Nesting is handled with an explicit stack, not recursion.
 *
 * Namespaces are not resolved: a prefixed name stays as written ("ns:event"), and xmlns attributes
 * are ordinary attributes. Line ends are normalized (CR LF and CR become LF) and attribute values
 * are whitespace-normalized as the XML spec requires. The declared encoding is not interpreted: the
 * caller hands in text it has already decoded.
 */
import { assert } from "../../assert.ts";
import { xmlLimits } from "../../constants.ts";

export interface XmlElement {
  /** As written, prefix included. */
  readonly name: string;
  /** Null-prototype: attribute names come from the input. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Character data directly inside this element (not its children's), entity-decoded, concatenated. */
  readonly text: string;
}

export type XmlReadResult = { ok: true; root: XmlElement } | { ok: false; error: string };

/**
 * Syntax errors arise many calls deep; one private exception, turned into a typed result by
 * readXml and nowhere else, keeps every helper straight-line. Nothing else is ever caught.
 */
class XmlSyntaxError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(reason);
  }
}

/** An element whose end tag has not been read yet; `text` grows as its character data is read. */
interface OpenElement {
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly children: XmlElement[];
  text: string;
  textBytes: number;
  /** Offset of its `<`, for "unclosed" errors. */
  readonly offset: number;
}

/** Shared by every element without attributes (most of them): never written to. */
const noAttributes: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

interface Reader {
  readonly text: string;
  offset: number;
  elements: number;
}

const LT = 0x3c;
const GT = 0x3e;
const AMP = 0x26;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const EQUALS = 0x3d;
const SEMICOLON = 0x3b;
const HASH = 0x23;
const CLOSE_BRACKET = 0x5d;
const CR = 0x0d;
const LF = 0x0a;
const TAB = 0x09;
const SPACE = 0x20;

export function readXml(text: string): XmlReadResult {
  assert(typeof text === "string", "readXml takes text");
  if (!withinBytes(text, xmlLimits.inputBytesMax)) {
    return { ok: false, error: `document exceeds ${xmlLimits.inputBytesMax} bytes` };
  }
  try {
    return { ok: true, root: readDocument({ text, offset: 0, elements: 0 }) };
  } catch (error) {
    if (!(error instanceof XmlSyntaxError)) throw error;
    return { ok: false, error: `${error.reason} (at ${lineColumn(text, error.offset)})` };
  }
}

function fail(reason: string, offset: number): never {
  throw new XmlSyntaxError(reason, offset);
}

/** UTF-8 length ≤ max, without encoding: a UTF-16 code unit is 1 to 3 UTF-8 bytes (a pair is 4). */
function withinBytes(text: string, max: number): boolean {
  if (text.length > max) return false;
  if (text.length * 3 <= max) return true;
  let bytes = 0;
  for (let i = 0; i < text.length && bytes <= max; i++) bytes += unitBytes(text.charCodeAt(i));
  return bytes <= max;
}

/** UTF-8 bytes of one UTF-16 code unit; each half of a surrogate pair counts 2 (4 together). */
function unitBytes(unit: number): number {
  if (unit < 0x80) return 1;
  if (unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff)) return 2;
  return 3;
}

/** "line:column", both from 1, the column in code points; computed only when reporting. */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  let column = 1;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    const unit = text.charCodeAt(i);
    if (unit === LF || (unit === CR && text.charCodeAt(i + 1) !== LF)) {
      line++;
      column = 1;
    } else if (unit !== CR && !(unit >= 0xdc00 && unit <= 0xdfff && i > 0 && isHighSurrogate(text.charCodeAt(i - 1)))) {
      column++;
    }
  }
  return `${line}:${column}`;
}

function readDocument(reader: Reader): XmlElement {
  if (reader.text.charCodeAt(0) === 0xfeff) reader.offset = 1; // a byte order mark is not content
  readDeclaration(reader);
  skipMisc(reader, false);
  if (reader.offset >= reader.text.length) fail("no root element", reader.offset);
  const root = readElementTree(reader);
  skipMisc(reader, true);
  assert(reader.offset === reader.text.length, "skipMisc consumes the rest of the document or fails");
  return root;
}

/** The optional `<?xml version=… ?>`, only at the very start (XML 1.0 §2.8). */
function readDeclaration(reader: Reader): void {
  const { text } = reader;
  if (!text.startsWith("<?xml", reader.offset) || !isSpace(text.charCodeAt(reader.offset + 5))) return;
  const end = text.indexOf("?>", reader.offset);
  if (end < 0) fail("unclosed XML declaration", reader.offset);
  let cursor = reader.offset + 5;
  while (isSpace(text.charCodeAt(cursor))) cursor++;
  if (!text.startsWith("version", cursor) || cursor >= end) fail("XML declaration without a version", reader.offset);
  reader.offset = end + 2;
}

/** Whitespace and comments around the root; everything else is refused. Stops at the root's `<`. */
function skipMisc(reader: Reader, afterRoot: boolean): void {
  const { text } = reader;
  while (reader.offset < text.length) {
    const unit = text.charCodeAt(reader.offset);
    if (isSpace(unit)) {
      reader.offset++;
    } else if (unit !== LT) {
      fail("text outside the root element", reader.offset);
    } else if (text.startsWith("<!--", reader.offset)) {
      skipComment(reader);
    } else {
      const next = text.charCodeAt(reader.offset + 1);
      if (next === QUESTION || next === BANG) refuseMarkup(reader);
      if (afterRoot) fail(next === SLASH ? "end tag after the root element closed" : "a second root element", reader.offset);
      return;
    }
  }
}

/** `<?…` or a `<!…` other than a comment or CDATA: always an error, named precisely. */
function refuseMarkup(reader: Reader): never {
  const { text, offset } = reader;
  if (text.startsWith("<?xml", offset) && isSpace(text.charCodeAt(offset + 5))) fail("the XML declaration must come first", offset);
  if (text.startsWith("<?", offset)) fail("processing instructions are not allowed", offset);
  if (text.startsWith("<!DOCTYPE", offset)) fail("DOCTYPE is not allowed (no DTDs, no entity declarations)", offset);
  if (text.startsWith("<![CDATA[", offset)) fail("CDATA outside the root element", offset);
  fail(`markup declaration "${text.slice(offset, offset + 10)}" is not allowed`, offset);
}

/** Lenient about "--" inside a comment (XML forbids it): harmless, and generators do emit it. */
function skipComment(reader: Reader): void {
  const end = reader.text.indexOf("-->", reader.offset + 4);
  if (end < 0) fail("unclosed comment", reader.offset);
  reader.offset = end + 3;
}

/** The root element and everything inside it, iteratively; returns with the offset after its end tag. */
function readElementTree(reader: Reader): XmlElement {
  const { text } = reader;
  const stack: OpenElement[] = [];
  const closed: XmlElement[] = [];
  const done = (element: XmlElement) => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) closed.push(element);
    else parent.children.push(element);
  };
  readStartTag(reader, stack, done);
  // Every step consumes at least one character: the text length bounds the loop.
  for (let steps = 0; stack.length > 0; steps++) {
    assert(steps <= text.length, "the element loop advances on every step");
    const current = stack[stack.length - 1]!;
    if (reader.offset >= text.length) fail(`unclosed element <${current.name}>`, current.offset);
    const unit = text.charCodeAt(reader.offset);
    if (unit === AMP) appendText(reader, current, readReference(reader));
    else if (unit !== LT) readCharData(reader, current);
    else readMarkupInContent(reader, stack, done);
  }
  assert(closed.length === 1, "exactly the root closes at the bottom of the stack");
  return closed[0]!;
}

function readMarkupInContent(reader: Reader, stack: OpenElement[], done: (element: XmlElement) => void): void {
  const { text, offset } = reader;
  const next = text.charCodeAt(offset + 1);
  if (next === SLASH) {
    done(readEndTag(reader, stack));
  } else if (text.startsWith("<!--", offset)) {
    skipComment(reader);
  } else if (text.startsWith("<![CDATA[", offset)) {
    readCData(reader, stack[stack.length - 1]!);
  } else if (next === BANG || next === QUESTION) {
    refuseMarkup(reader);
  } else {
    readStartTag(reader, stack, done);
  }
}

/** `<name attr="v" …>` or `<name …/>`; pushes the element, or completes it when self-closing. */
function readStartTag(reader: Reader, stack: OpenElement[], done: (element: XmlElement) => void): void {
  const { text } = reader;
  const offset = reader.offset;
  assert(text.charCodeAt(offset) === LT, "a start tag begins with <");
  if (stack.length >= xmlLimits.depthMax) fail(`elements nested deeper than ${xmlLimits.depthMax}`, offset);
  reader.elements++;
  if (reader.elements > xmlLimits.elementsMax) fail(`more than ${xmlLimits.elementsMax} elements`, offset);
  reader.offset++;
  const name = readName(reader, "an element name");
  const attributes = readAttributes(reader);
  if (text.charCodeAt(reader.offset) === SLASH) {
    reader.offset += 2; // readAttributes checked the ">"
    done({ name, attributes, children: [], text: "" });
  } else {
    reader.offset++;
    stack.push({ name, attributes, children: [], text: "", textBytes: 0, offset });
  }
}

/** Attributes up to (not past) `>` or `/>`. */
function readAttributes(reader: Reader): Record<string, string> {
  const { text } = reader;
  let attributes = noAttributes as Record<string, string>;
  for (let count = 0; ; count++) {
    const spaced = skipSpace(reader);
    const unit = text.charCodeAt(reader.offset);
    if (unit === GT || (unit === SLASH && text.charCodeAt(reader.offset + 1) === GT)) return attributes;
    if (reader.offset >= text.length) fail("unclosed start tag", reader.offset);
    if (!spaced || !isNameStart(codePointAt(text, reader.offset))) fail("expected an attribute name, '>' or '/>'", reader.offset);
    if (count >= xmlLimits.attributesPerElementMax) fail(`more than ${xmlLimits.attributesPerElementMax} attributes`, reader.offset);
    const offset = reader.offset;
    const name = readName(reader, "an attribute name");
    skipSpace(reader);
    if (text.charCodeAt(reader.offset) !== EQUALS) fail(`expected '=' after attribute ${name}`, reader.offset);
    reader.offset++;
    skipSpace(reader);
    const value = readAttributeValue(reader, name);
    if (Object.hasOwn(attributes, name)) fail(`duplicate attribute ${name}`, offset);
    if (attributes === noAttributes) attributes = Object.create(null) as Record<string, string>;
    attributes[name] = value;
  }
}

/** A quoted value: references decoded, literal whitespace made spaces (XML 1.0 §3.3.3), `<` refused. */
function readAttributeValue(reader: Reader, name: string): string {
  const { text } = reader;
  const quote = text.charCodeAt(reader.offset);
  if (quote !== 0x22 && quote !== 0x27) fail(`expected a quoted value for attribute ${name}`, reader.offset);
  const start = reader.offset;
  reader.offset++;
  const parts: string[] = [];
  let bytes = 0;
  let runStart = reader.offset;
  while (reader.offset < text.length) {
    const unit = text.charCodeAt(reader.offset);
    if (unit === quote || unit === AMP || unit === LT || unit === TAB || unit === LF || unit === CR) {
      parts.push(text.slice(runStart, reader.offset));
      if (unit === quote) {
        reader.offset++;
        return parts.join("");
      }
      if (unit === LT) fail(`'<' in the value of attribute ${name}`, reader.offset);
      const piece = unit === AMP ? readReference(reader) : readLineEndAsSpace(reader);
      parts.push(piece);
      bytes += piece.length * 3; // a loose upper bound is enough here
      runStart = reader.offset;
    } else {
      bytes += checkChar(text, reader.offset);
      reader.offset += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
    }
    if (bytes > xmlLimits.elementTextBytesMax) fail(`value of attribute ${name} exceeds ${xmlLimits.elementTextBytesMax} bytes`, start);
  }
  return fail(`unclosed value of attribute ${name}`, start);
}

function readLineEndAsSpace(reader: Reader): string {
  const unit = reader.text.charCodeAt(reader.offset);
  reader.offset += unit === CR && reader.text.charCodeAt(reader.offset + 1) === LF ? 2 : 1;
  return " ";
}

/** `</name>` matching the innermost open element; returns that element, complete. */
function readEndTag(reader: Reader, stack: OpenElement[]): XmlElement {
  const offset = reader.offset;
  reader.offset += 2;
  const expected = stack[stack.length - 1]?.name;
  // The usual case, checked in place: the open element's name, then no more name characters.
  const after = reader.offset + (expected?.length ?? 0);
  const matches = expected !== undefined && reader.text.startsWith(expected, reader.offset) && !continuesName(reader.text, after);
  const name = matches ? expected : readName(reader, "an element name after '</'");
  if (matches) reader.offset = after;
  skipSpace(reader);
  if (reader.text.charCodeAt(reader.offset) !== GT) fail(`expected '>' to end </${name}`, reader.offset);
  reader.offset++;
  const open = stack.pop();
  assert(open !== undefined, "content is read only inside an open element");
  if (open.name !== name) fail(`end tag </${name}> does not match <${open.name}>`, offset);
  return { name, attributes: open.attributes, children: open.children, text: open.text };
}

/** Literal character data up to the next `<` or `&`. */
function readCharData(reader: Reader, current: OpenElement): void {
  const { text } = reader;
  const start = reader.offset;
  // Most runs are printable ASCII without ']': nothing to check or normalize, one pass finds the end.
  let cursor = start;
  let plain = true;
  while (cursor < text.length) {
    const unit = text.charCodeAt(cursor);
    if (unit === LT || unit === AMP) break;
    if (unit < SPACE || unit > 0x7e || unit === CLOSE_BRACKET) {
      plain = false;
      break;
    }
    cursor++;
  }
  if (plain) {
    reader.offset = cursor;
    addTextBytes(current, cursor - start, start);
    current.text += text.slice(start, cursor);
    return;
  }
  let bytes = 0;
  let sawCr = false;
  for (cursor = start; cursor < text.length; ) {
    const unit = text.charCodeAt(cursor);
    if (unit === LT || unit === AMP) break;
    if (unit === CLOSE_BRACKET && text.startsWith("]]>", cursor)) fail("']]>' is not allowed in text", cursor);
    if (unit === CR) sawCr = true;
    bytes += checkChar(text, cursor);
    cursor += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
  }
  reader.offset = cursor;
  addTextBytes(current, bytes, start);
  const run = text.slice(start, cursor);
  current.text += sawCr ? normalizeLineEnds(run) : run;
}

/** `<![CDATA[…]]>`: literal text, no references, same character rules. */
function readCData(reader: Reader, current: OpenElement): void {
  const { text } = reader;
  const start = reader.offset;
  const end = text.indexOf("]]>", start + 9);
  if (end < 0) fail("unclosed CDATA section", start);
  let bytes = 0;
  let sawCr = false;
  for (let cursor = start + 9; cursor < end; ) {
    const unit = text.charCodeAt(cursor);
    if (unit === CR) sawCr = true;
    bytes += checkChar(text, cursor);
    cursor += unit >= 0xd800 && unit <= 0xdbff ? 2 : 1;
  }
  reader.offset = end + 3;
  addTextBytes(current, bytes, start);
  const run = text.slice(start + 9, end);
  current.text += sawCr ? normalizeLineEnds(run) : run;
}

function appendText(reader: Reader, current: OpenElement, decoded: string): void {
  let bytes = 0;
  for (let i = 0; i < decoded.length; i++) bytes += unitBytes(decoded.charCodeAt(i));
  addTextBytes(current, bytes, reader.offset);
  current.text += decoded;
}

function addTextBytes(current: OpenElement, bytes: number, offset: number): void {
  current.textBytes += bytes;
  if (current.textBytes > xmlLimits.elementTextBytesMax) {
    fail(`text inside <${current.name}> exceeds ${xmlLimits.elementTextBytesMax} bytes`, offset);
  }
}

/** XML 1.0 §2.11: CR LF and lone CR become LF. Only on runs known to hold a CR. */
function normalizeLineEnds(run: string): string {
  return run.replaceAll("\r\n", "\n").replaceAll("\r", "\n");
}

/** `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` `&#N;` `&#xH;`; any other name is undeclared by design. */
function readReference(reader: Reader): string {
  const { text } = reader;
  const start = reader.offset;
  assert(text.charCodeAt(start) === AMP, "a reference begins with &");
  reader.offset++;
  if (text.charCodeAt(reader.offset) === HASH) return readCharReference(reader, start);
  if (!isNameStart(codePointAt(text, reader.offset))) fail("'&' must start a reference (write &amp;)", start);
  const name = readName(reader, "an entity name");
  if (text.charCodeAt(reader.offset) !== SEMICOLON) fail(`reference &${name} lacks ';'`, start);
  reader.offset++;
  switch (name) {
    case "lt":
      return "<";
    case "gt":
      return ">";
    case "amp":
      return "&";
    case "quot":
      return '"';
    case "apos":
      return "'";
    default:
      return fail(`undefined entity &${name}; (only the predefined entities and numeric references are decoded)`, start);
  }
}

/** `&#…;` after `&`: digits bounded, the code point must be an XML Char (§2.2). */
function readCharReference(reader: Reader, start: number): string {
  const { text } = reader;
  reader.offset++; // '#'
  const hex = text.charCodeAt(reader.offset) === 0x78; // 'x'
  if (hex) reader.offset++;
  const digitsStart = reader.offset;
  let value = 0;
  // Eight digits hold any code point with leading zeros to spare; more is refused, not scanned on.
  for (let count = 0; count < 8; count++) {
    const digit = digitValue(text.charCodeAt(reader.offset), hex);
    if (digit < 0) break;
    value = value * (hex ? 16 : 10) + digit;
    reader.offset++;
  }
  if (reader.offset === digitsStart) fail("character reference without digits", start);
  if (text.charCodeAt(reader.offset) !== SEMICOLON) fail("character reference lacks ';' (or has too many digits)", start);
  reader.offset++;
  if (!isXmlCodePoint(value)) fail(`character reference to ${codePointName(value)}, not an XML character`, start);
  return String.fromCodePoint(value);
}

function digitValue(unit: number, hex: boolean): number {
  if (unit >= 0x30 && unit <= 0x39) return unit - 0x30;
  if (!hex) return -1;
  if (unit >= 0x61 && unit <= 0x66) return unit - 0x61 + 10;
  if (unit >= 0x41 && unit <= 0x46) return unit - 0x41 + 10;
  return -1;
}

/** An XML Name (§2.3), at most `nameCharsMax` characters; `what` names it in errors. */
function readName(reader: Reader, what: string): string {
  const { text } = reader;
  const start = reader.offset;
  const first = codePointAt(text, start);
  if (!isNameStart(first)) fail(`expected ${what}`, start);
  let cursor = start + (first > 0xffff ? 2 : 1);
  for (let chars = 1; cursor < text.length; ) {
    // Names are almost always ASCII: one table lookup per character instead of the range tests.
    const unit = text.charCodeAt(cursor);
    if (unit < 0x80) {
      if ((asciiNameClass[unit]! & NAME_CHAR) === 0) break;
      cursor++;
    } else {
      const point = text.codePointAt(cursor)!;
      if (!isNameChar(point)) break;
      cursor += point > 0xffff ? 2 : 1;
    }
    if (++chars > xmlLimits.nameCharsMax) fail(`name longer than ${xmlLimits.nameCharsMax} characters`, start);
  }
  reader.offset = cursor;
  return text.slice(start, cursor);
}

/** Whether a name character follows at `offset` (so a name read up to there would be longer). */
function continuesName(text: string, offset: number): boolean {
  if (offset >= text.length) return false;
  const unit = text.charCodeAt(offset);
  return unit < 0x80 ? (asciiNameClass[unit]! & NAME_CHAR) !== 0 : isNameChar(text.codePointAt(offset)!);
}

const NAME_START = 1;
const NAME_CHAR = 2;
/** For each ASCII code: NAME_START and/or NAME_CHAR, from isNameStart/isNameChar (so the two agree). */
const asciiNameClass = Uint8Array.from({ length: 0x80 }, (_, point) => (isNameStart(point) ? NAME_START : 0) | (isNameChar(point) ? NAME_CHAR : 0));

function skipSpace(reader: Reader): boolean {
  const start = reader.offset;
  while (isSpace(reader.text.charCodeAt(reader.offset))) reader.offset++;
  return reader.offset > start;
}

function isSpace(unit: number): boolean {
  return unit === SPACE || unit === TAB || unit === LF || unit === CR;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** The code point at `offset` (a lone surrogate comes back as itself; -1 past the end). */
function codePointAt(text: string, offset: number): number {
  return offset < text.length ? text.codePointAt(offset)! : -1;
}

/** Checks the character at `offset` is an XML Char and returns its UTF-8 bytes (4 for a pair). */
function checkChar(text: string, offset: number): number {
  const unit = text.charCodeAt(offset);
  if (unit >= SPACE && unit < 0xd800) return unitBytes(unit);
  const point = codePointAt(text, offset);
  if (point >= 0xd800 && point <= 0xdfff) fail("unpaired surrogate in text", offset);
  if (!isXmlCodePoint(point)) fail(`character ${codePointName(point)} is not allowed in XML`, offset);
  return point > 0xffff ? 4 : unitBytes(unit);
}

function codePointName(point: number): string {
  return `U+${point.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** XML 1.0 §2.2 Char. */
function isXmlCodePoint(point: number): boolean {
  if (point < SPACE) return point === TAB || point === LF || point === CR;
  return point <= 0xd7ff || (point >= 0xe000 && point <= 0xfffd) || (point >= 0x10000 && point <= 0x10ffff);
}

/** XML 1.0 (fifth edition) §2.3 NameStartChar; ':' is allowed, so prefixes stay in names. */
function isNameStart(point: number): boolean {
  if (point < 0x80) {
    return (point >= 0x61 && point <= 0x7a) || (point >= 0x41 && point <= 0x5a) || point === 0x5f || point === 0x3a;
  }
  return (
    (point >= 0xc0 && point <= 0xd6) ||
    (point >= 0xd8 && point <= 0xf6) ||
    (point >= 0xf8 && point <= 0x2ff) ||
    (point >= 0x370 && point <= 0x37d) ||
    (point >= 0x37f && point <= 0x1fff) ||
    (point >= 0x200c && point <= 0x200d) ||
    (point >= 0x2070 && point <= 0x218f) ||
    (point >= 0x2c00 && point <= 0x2fef) ||
    (point >= 0x3001 && point <= 0xd7ff) ||
    (point >= 0xf900 && point <= 0xfdcf) ||
    (point >= 0xfdf0 && point <= 0xfffd) ||
    (point >= 0x10000 && point <= 0xeffff)
  );
}

/** §2.3 NameChar. */
function isNameChar(point: number): boolean {
  if (isNameStart(point)) return true;
  return (
    point === 0x2d ||
    point === 0x2e ||
    (point >= 0x30 && point <= 0x39) ||
    point === 0xb7 ||
    (point >= 0x300 && point <= 0x36f) ||
    (point >= 0x203f && point <= 0x2040)
  );
}
