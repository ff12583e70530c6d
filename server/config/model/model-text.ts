/**
 * @module The model as text, YAML or JSON. Export is canonical (one model, one text: keys in
 * document order, named objects sorted, a fixed YAML style of our own rather than a library's, so
 * the text cannot change under us with a parser upgrade) and round-trips exactly through import.
 *
 * Import never throws: every failure is a problem. It is the model's trust boundary, so the text is
 * refused before any parser sees it when it is too large or nests too deeply, or, for YAML, when
 * it uses anchors, aliases or tags. Aliases are how a kilobyte of YAML expands into gigabytes
 * ("billion laughs"); Bun's parser shares aliased nodes, so the blow-up would come later, in
 * whatever walks the value. The scanner below finds them in the text; a walk of the parsed value
 * that refuses any node reached twice is the second line of defence.
 */
import { assert } from "../../assert.ts";
import { configLimits } from "../../constants.ts";
import { modelDocument, parseModel } from "./parse-model.ts";
import type { ConfigModel, ModelResult, Problem } from "./types.ts";

export type ModelTextFormat = "yaml" | "json";

/** The canonical text of a model, ending in a newline. */
export function exportModel(model: ConfigModel, format: ModelTextFormat): string {
  assert(format === "yaml" || format === "json", () => `unknown model text format '${String(format)}'`);
  const document = modelDocument(model);
  return format === "json" ? `${JSON.stringify(document, null, 2)}\n` : emitYaml(document);
}

/** Parses and validates a model text; a text export wrote comes back as the same model. */
export function importModelText(text: string, format: ModelTextFormat): ModelResult {
  assert(format === "yaml" || format === "json", () => `unknown model text format '${String(format)}'`);
  const max = configLimits.textBytesMax;
  // Every UTF-16 unit is at least one UTF-8 byte: a long string is refused without being measured.
  const bytes = text.length > max ? text.length : Buffer.byteLength(text);
  if (bytes > max) return refuse([{ path: "", message: `the text is ${text.length > max ? "over " : ""}${bytes} bytes; at most ${max} are accepted` }]);
  const read = format === "json" ? readJson(text) : readYaml(text);
  return read.ok ? parseModel(read.value) : read;
}

function refuse(problems: readonly Problem[]): ModelResult {
  assert(problems.length > 0, "a refusal names its problems");
  return { ok: false, problems };
}

type Read = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problems: readonly Problem[] };

function readJson(text: string): Read {
  if (jsonDepthExceeded(text)) return { ok: false, problems: [tooDeep()] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, problems: [{ path: "", message: `not valid JSON: ${(error as Error).message}` }] };
  }
  const shape = shapeProblem(value);
  return shape === null ? { ok: true, value } : { ok: false, problems: [shape] };
}

function readYaml(text: string): Read {
  const findings = scanYaml(text);
  if (findings.length > 0) return { ok: false, problems: findings };
  let value: unknown;
  try {
    value = Bun.YAML.parse(text);
  } catch (error) {
    return { ok: false, problems: [{ path: "", message: `not valid YAML: ${(error as Error).message}` }] };
  }
  const shape = shapeProblem(value);
  return shape === null ? { ok: true, value } : { ok: false, problems: [shape] };
}

function tooDeep(): Problem {
  return { path: "", message: `the document nests deeper than ${configLimits.nestingDepthMax} levels` };
}

/** Bracket depth outside strings; exact for JSON, and cheap enough to run before the parser. */
function jsonDepthExceeded(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > configLimits.nestingDepthMax) return true;
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return false;
}

/** The parsed value must be a tree (no node reached twice: no alias) no deeper than the limit. */
function shapeProblem(value: unknown): Problem | null {
  const seen = new Set<object>();
  let problem: Problem | null = null;
  const visit = (node: unknown, depth: number): void => {
    if (problem !== null || typeof node !== "object" || node === null) return;
    if (depth > configLimits.nestingDepthMax) problem = tooDeep();
    else if (seen.has(node)) problem = { path: "", message: "the document shares a node between two places (a YAML alias); aliases are not accepted" };
    else {
      seen.add(node);
      for (const child of Array.isArray(node) ? node : Object.values(node)) visit(child, depth + 1);
    }
  };
  visit(value, 1);
  return problem;
}

// ---- YAML export ----

type Entries = Readonly<Record<string, unknown>>;

function emitYaml(document: object): string {
  const lines: string[] = [];
  emitEntries(lines, document as Entries, { indent: 0, firstPrefix: null, depth: 1 });
  return `${lines.join("\n")}\n`;
}

function isNonEmptyCollection(value: unknown): value is Entries | readonly unknown[] {
  if (typeof value !== "object" || value === null) return false;
  return Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0;
}

/** A mapping in block style; `firstPrefix` puts the first key on a sequence item's "- " line. */
function emitEntries(lines: string[], entries: Entries, at: { indent: number; firstPrefix: string | null; depth: number }): void {
  assert(at.depth <= configLimits.nestingDepthMax, "a model nests within the limit");
  const pad = " ".repeat(at.indent);
  Object.entries(entries).forEach(([key, value], i) => {
    const head = `${i === 0 && at.firstPrefix !== null ? at.firstPrefix : pad}${yamlString(key)}:`;
    if (!isNonEmptyCollection(value)) lines.push(`${head} ${inline(value)}`);
    else {
      lines.push(head);
      if (Array.isArray(value)) emitItems(lines, value, { indent: at.indent + 2, depth: at.depth + 1 });
      else emitEntries(lines, value as Entries, { indent: at.indent + 2, firstPrefix: null, depth: at.depth + 1 });
    }
  });
}

function emitItems(lines: string[], items: readonly unknown[], at: { indent: number; depth: number }): void {
  assert(at.depth <= configLimits.nestingDepthMax, "a model nests within the limit");
  const pad = " ".repeat(at.indent);
  for (const value of items) {
    if (!isNonEmptyCollection(value)) lines.push(`${pad}- ${inline(value)}`);
    else if (!Array.isArray(value)) emitEntries(lines, value as Entries, { indent: at.indent + 2, firstPrefix: `${pad}- `, depth: at.depth + 1 });
    else {
      lines.push(`${pad}-`);
      emitItems(lines, value, { indent: at.indent + 2, depth: at.depth + 1 });
    }
  }
}

/** A scalar, or an empty collection, on one line. */
function inline(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") return yamlString(value);
  if (typeof value === "number") {
    assert(Number.isFinite(value), "model numbers are finite");
    return String(value);
  }
  assert(typeof value === "object", () => `no ${typeof value} in a model`);
  return Array.isArray(value) ? "[]" : "{}";
}

/**
 * Plain only when it is unmistakably a string for any YAML reader (1.1 or 1.2): starts with a
 * letter, '_' or '/', holds nothing YAML gives meaning to, and is not a word some schema reads as
 * null, boolean or a number. Everything else is double-quoted.
 */
const plainPattern = /^[A-Za-z_/][A-Za-z0-9_./@%+=-]*(?:[ :][A-Za-z0-9_./@%+=-]+)*$/;
const plainWords = new Set(["null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity"]);

function yamlString(text: string): string {
  return plainPattern.test(text) && !plainWords.has(text.toLowerCase()) ? text : quoted(text);
}

/**
 * A double-quoted scalar on one line. Escaped beyond JSON's set: what YAML does not allow raw (DEL,
 * C1 controls, U+FFFE/U+FFFF) and what some readers take for a line break or a BOM (U+2028,
 * U+2029, U+FEFF).
 */
function quoted(text: string): string {
  assert(text.isWellFormed(), "model strings are valid Unicode");
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) out += `\\x${code.toString(16).toUpperCase().padStart(2, "0")}`;
    else if (code === 0x2028 || code === 0x2029 || code === 0xfeff || code === 0xfffe || code === 0xffff) out += `\\u${code.toString(16).toUpperCase()}`;
    else out += ch;
  }
  return `${out}"`;
}

// ---- YAML scanning ----

/** Line breaks as Bun's YAML parser sees them: LF, CRLF and a lone CR (NEL, LS and PS are not). */
const lineBreak = /\r\n|\r|\n/;
const flowIndicators = ",[]{}";
const indicatorMessages: Readonly<Record<string, string>> = {
  "*": "YAML aliases (*name) are not accepted: alias expansion can turn a small document into a huge one",
  "&": "YAML anchors (&name) are not accepted (aliases are refused)",
  "!": "YAML tags (!tag) are not accepted",
};

function isBlank(ch: string | undefined): boolean {
  return ch === " " || ch === "\t";
}

function leadingSpaces(text: string): number {
  let i = 0;
  while (text[i] === " ") i++;
  return i;
}

/**
 * Problems a YAML text has before parsing: anchors, aliases, tags, nesting beyond the limit,
 * more than one document, and two forms this scanner refuses rather than guess at (plain scalars
 * continued on another line, and block scalars with an explicit indentation indicator). Export
 * never writes any of them.
 */
export function scanYaml(text: string): Problem[] {
  const scanner = new YamlScanner();
  const lines = (text.startsWith("\uFEFF") ? text.slice(1) : text).split(lineBreak);
  for (let i = 0; i < lines.length && scanner.findings.length < configLimits.problemsMax; i++) scanner.line(lines[i] as string, i + 1);
  return scanner.findings;
}

/**
 * A line-by-line tokenizer that tracks just enough of YAML to know where a node may start: quoted
 * scalars (which may span lines), comments, block scalars (by indentation), flow collections and
 * plain scalars (inside which '&', '*' and '!' are ordinary characters, as they are to the parser).
 */
class YamlScanner {
  readonly findings: Problem[] = [];
  private mode: "normal" | "double" | "single" | "block" = "normal";
  private flowDepth = 0;
  /** Block scalar: the column its parent node starts at, and its content indentation once seen. */
  private blockParent = -1;
  private blockIndent: number | null = null;
  /** The parent column of a plain scalar that ended the previous line (block context). */
  private openPlain: number | null = null;
  /** A plain scalar ended the previous line inside a flow collection. */
  private openFlowPlain = false;
  /** The column of a key, '-' or '?' whose value starts on a later line. */
  private pendingParent: number | null = null;
  private readonly indents: number[] = [];
  private contentSeen = false;
  private documentEnded = false;
  private depthReported = false;
  private lineNumber = 0;

  line(text: string, lineNumber: number): void {
    this.lineNumber = lineNumber;
    if (this.mode === "block" && this.inBlockScalar(text)) return;
    if (this.mode === "double" || this.mode === "single") {
      const end = quoteEnd(text, 0, this.mode);
      if (end < 0) return;
      this.mode = "normal";
      this.tokens(text, end + 1, { parent: -1, afterQuote: true });
      return;
    }
    const first = text.search(/[^ \t]/);
    if (first < 0 || text[first] === "#") return;
    if (this.flowDepth > 0) {
      const c = text[first] as string;
      if (this.openFlowPlain && !",]}:".includes(c)) this.find(first, "a plain (unquoted) string continues on this line; quote strings that span lines");
      this.openFlowPlain = false;
      this.tokens(text, first, { parent: -1 });
      return;
    }
    this.blockLine(text);
  }

  private inBlockScalar(text: string): boolean {
    if (/^[ \t]*$/.test(text)) return true;
    const indent = leadingSpaces(text);
    if (this.blockIndent === null && indent > this.blockParent) this.blockIndent = indent;
    if (this.blockIndent !== null && indent >= this.blockIndent) return true;
    this.mode = "normal";
    return false;
  }

  private blockLine(text: string): void {
    const indent = leadingSpaces(text);
    if (indent === 0 && text.startsWith("%")) return; // a directive; tags it declares are caught where used
    if (indent === 0 && /^(---|\.\.\.)([ \t]|$)/.test(text)) {
      if (text.startsWith("---") && this.contentSeen) this.find(0, "a second YAML document; one document holds the whole model");
      this.documentEnded = text.startsWith("...");
      this.openPlain = null;
      this.pendingParent = null;
      this.indents.length = 0;
      this.tokens(text, 3, { parent: -1 });
      return;
    }
    if (this.openPlain !== null && indent > this.openPlain) {
      this.find(indent, "a plain (unquoted) string continues on this line; quote strings that span lines");
      return;
    }
    this.openPlain = null;
    while (this.indents.length > 0 && (this.indents.at(-1) as number) > indent) this.indents.pop();
    if (this.indents.length === 0 || (this.indents.at(-1) as number) < indent) this.indents.push(indent);
    if (this.indents.length - 1 > configLimits.nestingDepthMax) this.tooDeep(indent);
    const parent = this.pendingParent ?? -1;
    this.pendingParent = null;
    this.tokens(text, indent, { parent });
  }

  /** The tokens of one line from `start`; `parent` is the column owning a value that starts here. */
  private tokens(text: string, start: number, options: { parent: number; afterQuote?: boolean }): void {
    const afterQuote = options.afterQuote === true;
    const state: LineState = { parent: options.parent, keyStart: afterQuote ? 0 : -1, flowStart: -1, jsonLike: afterQuote, ending: "other", plainParent: -1, indicators: 0 };
    let i = start;
    while (i < text.length && this.mode === "normal") {
      const c = text[i] as string;
      if (isBlank(c)) i++;
      else if (c === "#" && (i === 0 || isBlank(text[i - 1]))) {
        state.ending = state.ending === "plain" ? "other" : state.ending; // a comment ends a plain scalar
        break;
      } else i = this.token(text, i, state);
    }
    if (state.indicators > configLimits.nestingDepthMax) this.tooDeep(start);
    if (this.mode !== "normal") {
      this.openPlain = null;
      this.pendingParent = null;
    } else if (this.flowDepth > 0) this.openFlowPlain = state.ending === "plain";
    else {
      this.openPlain = state.ending === "plain" ? state.plainParent : null;
      this.pendingParent = state.ending === "indicator" ? state.parent : null;
    }
  }

  /** One token at `i` (not blank, not a comment); returns where the next one may start. */
  private token(text: string, i: number, state: LineState): number {
    this.contentAt(i);
    const c = text[i] as string;
    const next = text[i + 1];
    const flow = this.flowDepth > 0;
    const separated = next === undefined || isBlank(next) || (flow && flowIndicators.includes(next));
    const wasJsonLike = state.jsonLike;
    state.jsonLike = false;
    state.ending = "other";
    if (c === "&" || c === "*" || c === "!") {
      this.find(i, indicatorMessages[c] as string);
      const end = text.slice(i).search(/[ \t,[\]{}]/);
      return end < 0 ? text.length : i + end;
    }
    if (c === '"' || c === "'") {
      state.keyStart = i;
      const end = quoteEnd(text, i + 1, c === '"' ? "double" : "single");
      if (end < 0) this.mode = c === '"' ? "double" : "single";
      state.jsonLike = true;
      return end < 0 ? text.length : end + 1;
    }
    if (c === "[" || c === "{") {
      if (this.flowDepth === 0) state.flowStart = i;
      this.flowDepth += 1;
      if (this.flowDepth > configLimits.nestingDepthMax) this.tooDeep(i);
      return i + 1;
    }
    if (c === "]" || c === "}" || (c === "," && flow)) {
      if (c !== ",") this.flowDepth = Math.max(0, this.flowDepth - 1);
      // A whole flow collection may be a key: its value's parent is where the collection starts.
      if (c !== "," && this.flowDepth === 0) state.keyStart = state.flowStart;
      state.jsonLike = c !== ",";
      return i + 1;
    }
    // After a quoted scalar or a flow collection, ':' is an indicator even with no blank after it.
    if (((c === "-" || c === "?") && separated) || (c === ":" && (separated || wasJsonLike))) {
      state.parent = c === ":" && state.keyStart >= 0 ? state.keyStart : i;
      state.keyStart = -1;
      state.ending = "indicator";
      state.indicators += 1;
      return i + 1;
    }
    if ((c === "|" || c === ">") && !flow) return this.blockHeader(text, i, state.parent);
    state.keyStart = i;
    state.plainParent = state.parent;
    state.ending = "plain";
    return plainEnd(text, i, flow);
  }

  private blockHeader(text: string, i: number, parent: number): number {
    const header = /^[|>]([0-9+-]*)/.exec(text.slice(i)) as RegExpExecArray;
    // The content's indentation would then depend on the parent's, which this scanner only estimates.
    if (/[0-9]/.test(header[1] as string)) this.find(i, "block scalar indentation indicators (|2, >1) are not accepted");
    this.mode = "block";
    this.blockParent = parent;
    this.blockIndent = null;
    return text.length;
  }

  private contentAt(column: number): void {
    if (this.documentEnded) this.find(column, "content after the document end marker '...'");
    this.documentEnded = false;
    this.contentSeen = true;
  }

  private tooDeep(column: number): void {
    if (!this.depthReported) this.find(column, `the document nests deeper than ${configLimits.nestingDepthMax} levels`);
    this.depthReported = true;
  }

  private find(column: number, message: string): void {
    if (this.findings.length < configLimits.problemsMax) this.findings.push({ path: "", message: `line ${this.lineNumber}, column ${column + 1}: ${message}` });
  }
}

/** What the tokenizer knows about the line so far. */
interface LineState {
  /** Column of the node owning a value that starts next: key, '-' or '?'. */
  parent: number;
  /** Column where the last scalar or flow collection started: the key, if ':' follows. */
  keyStart: number;
  flowStart: number;
  /** The last token was quoted or a flow collection (JSON-like): ':' may follow directly. */
  jsonLike: boolean;
  /** What the line ended with: an open plain scalar, an indicator awaiting its value, or other. */
  ending: "plain" | "indicator" | "other";
  plainParent: number;
  /** Indicators on the line: each one opens a nested collection ("- - - x"). */
  indicators: number;
}

/** Index of the quote closing a scalar whose content starts at `from`, or -1 when it goes on past this line. */
function quoteEnd(text: string, from: number, kind: "double" | "single"): number {
  for (let j = from; j < text.length; j++) {
    const c = text[j];
    if (kind === "double" && c === "\\") j++;
    else if (kind === "double" && c === '"') return j;
    else if (kind === "single" && c === "'") {
      if (text[j + 1] !== "'") return j;
      j++;
    }
  }
  return -1;
}

/** Where a plain scalar starting at `i` ends: at " #", at ':' followed by a blank, or, in flow context, at a flow indicator. */
function plainEnd(text: string, i: number, flow: boolean): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j] as string;
    const next = text[j + 1];
    if (isBlank(c) && next === "#") return j;
    if (c === ":" && (next === undefined || isBlank(next) || (flow && flowIndicators.includes(next)))) return j;
    if (flow && flowIndicators.includes(c)) return j;
  }
  return text.length;
}
