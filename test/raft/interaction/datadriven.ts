/**
 * @module A small data-driven script runner in the manner of cockroachdb/datadriven, which
 * etcd-io/raft's interaction tests use. A script is a list of blocks:
 *
 *   # comments and blank lines between blocks are kept verbatim
 *   command arg key=value key=(a,b)
 *   ----
 *   expected output
 *
 * A block's expected output runs until the next blank line, so outputs never contain blank lines
 * (the runner asserts it). An empty output is written as `ok`, so a block is never ambiguous. With
 * `rewrite`, the runner writes the actual outputs back into the file, keeping everything else, so
 * a reviewer reads the diff instead of hand-writing traces.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { assert } from "../../../server/assert.ts";

/** One `command ... ---- output` block. */
export interface Directive {
  /** 1-based line of the command, for error messages. */
  readonly line: number;
  /** The command line as written, kept verbatim on rewrite. */
  readonly raw: string;
  readonly command: string;
  readonly args: Args;
  /** Lines between the command and `----`; most commands take none. */
  readonly input: readonly string[];
  readonly expected: string;
}

type Segment = { readonly kind: "text"; readonly line: string } | { readonly kind: "directive"; readonly directive: Directive };

export const separator = "----";
const emptyOutput = "ok";
const scriptLinesMax = 100_000;

/** A thrown ScriptError is the script's fault (bad command or argument), never the core's. */
export class ScriptError extends Error {
  override readonly name = "ScriptError";
}

/**
 * Parsed arguments of a command line: positional words and `key=value` pairs. Commands take what
 * they need through the typed getters and call done(), which rejects leftovers, so a misspelt
 * option fails loudly instead of being silently ignored.
 */
export class Args {
  private readonly used = new Set<string>();
  private positionalUsed = 0;

  constructor(
    readonly positional: readonly string[],
    private readonly named: ReadonlyMap<string, string>,
  ) {}

  /** Every remaining positional argument. */
  rest(): string[] {
    const out = this.positional.slice(this.positionalUsed);
    this.positionalUsed = this.positional.length;
    return out;
  }

  next(what: string): string {
    const value = this.positional[this.positionalUsed];
    if (value === undefined) throw new ScriptError(`missing argument: ${what}`);
    this.positionalUsed += 1;
    return value;
  }

  nextOptional(): string | null {
    const value = this.positional[this.positionalUsed];
    if (value === undefined) return null;
    this.positionalUsed += 1;
    return value;
  }

  nextInt(what: string): number {
    return toInt(this.next(what), what);
  }

  nextIntOptional(what: string): number | null {
    const value = this.nextOptional();
    return value === null ? null : toInt(value, what);
  }

  has(key: string): boolean {
    return this.named.has(key);
  }

  string(key: string): string | null {
    const value = this.named.get(key);
    if (value === undefined) return null;
    this.used.add(key);
    return value;
  }

  int(key: string, fallback: number): number {
    const value = this.string(key);
    return value === null ? fallback : toInt(value, key);
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.string(key);
    if (value === null) return fallback;
    if (value !== "true" && value !== "false") throw new ScriptError(`${key} must be true or false, got ${value}`);
    return value === "true";
  }

  /** A `key=(a,b,c)` list; a bare `key=a` is a list of one. */
  list(key: string): string[] | null {
    const value = this.string(key);
    return value === null ? null : parseList(value);
  }

  /** Rejects arguments the command did not read. */
  done(): void {
    const extra = this.positional.slice(this.positionalUsed);
    if (extra.length > 0) throw new ScriptError(`unexpected argument(s): ${extra.join(" ")}`);
    const unknown = [...this.named.keys()].filter((key) => !this.used.has(key));
    if (unknown.length > 0) throw new ScriptError(`unknown option(s): ${unknown.join(", ")}`);
  }
}

function toInt(value: string, what: string): number {
  if (!/^-?\d+$/.test(value)) throw new ScriptError(`${what} must be an integer, got ${value}`);
  return Number(value);
}

/** `(1,2,3)` → ["1","2","3"]; `()` → []; `4` → ["4"]. */
export function parseList(value: string): string[] {
  const inner = value.startsWith("(") && value.endsWith(")") ? value.slice(1, -1) : value;
  return inner
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/**
 * Splits a command line into words. Double-quoted words use JSON escapes (so data with spaces or
 * quotes can be proposed), and parentheses group a list that may contain spaces: `(1, 2)`.
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === " " || line[i] === "\t") {
      i += 1;
      continue;
    }
    const end = wordEnd(line, i);
    words.push(unquote(line.slice(i, end)));
    i = end;
  }
  return words;
}

function wordEnd(line: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < line.length) {
    const c = line[i];
    if (c === '"') {
      i = quoteEnd(line, i);
      continue;
    }
    if (c === "(") depth += 1;
    if (c === ")") depth -= 1;
    if ((c === " " || c === "\t") && depth === 0) return i;
    i += 1;
  }
  if (depth !== 0) throw new ScriptError(`unbalanced parentheses in: ${line}`);
  return i;
}

/** Index just past the closing quote of the string starting at `start`. */
function quoteEnd(line: string, start: number): number {
  let i = start + 1;
  while (i < line.length) {
    if (line[i] === "\\") i += 2;
    else if (line[i] === '"') return i + 1;
    else i += 1;
  }
  throw new ScriptError(`unterminated string in: ${line}`);
}

/** A word `key="a b"` or `"a b"` loses its JSON quoting; anything else is kept as written. */
function unquote(word: string): string {
  const quoteAt = word.indexOf('"');
  if (quoteAt < 0 || !word.endsWith('"')) return word;
  const prefix = word.slice(0, quoteAt);
  if (prefix !== "" && !/^[\w-]+=$/.test(prefix)) return word;
  return prefix + (JSON.parse(word.slice(quoteAt)) as string);
}

export function parseArgs(words: readonly string[]): Args {
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const word of words) {
    const match = /^([A-Za-z][\w-]*)=(.*)$/s.exec(word);
    if (match === null) {
      positional.push(word);
      continue;
    }
    const [, key, value] = match;
    assert(key !== undefined && value !== undefined, "regex groups present");
    if (named.has(key)) throw new ScriptError(`option ${key} given twice`);
    named.set(key, value);
  }
  return new Args(positional, named);
}

function isText(line: string): boolean {
  return line.trim() === "" || line.startsWith("#");
}

/** Splits a script into kept text lines and directives. */
export function parseScript(text: string): Segment[] {
  const lines = text.split("\n");
  // A trailing newline is not an extra empty line.
  if (lines[lines.length - 1] === "") lines.pop();
  assert(lines.length <= scriptLinesMax, "script too long");
  const segments: Segment[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (isText(line)) {
      segments.push({ kind: "text", line });
      i += 1;
      continue;
    }
    const parsed = parseDirective(lines, i);
    segments.push({ kind: "directive", directive: parsed.directive });
    i = parsed.next;
  }
  return segments;
}

function parseDirective(lines: readonly string[], start: number): { directive: Directive; next: number } {
  const commandLine = lines[start] ?? "";
  const words = tokenize(commandLine);
  const command = words[0];
  assert(command !== undefined, "a directive line has a word");
  const input: string[] = [];
  let i = start + 1;
  while (i < lines.length && lines[i] !== separator) {
    const line = lines[i] ?? "";
    if (line.trim() === "") throw new ScriptError(`line ${start + 1}: \`${commandLine}\` has no ${separator} line`);
    input.push(line);
    i += 1;
  }
  if (i >= lines.length) throw new ScriptError(`line ${start + 1}: \`${commandLine}\` has no ${separator} line`);
  i += 1; // the separator
  const expected: string[] = [];
  while (i < lines.length && (lines[i] ?? "").trim() !== "") {
    expected.push(lines[i] ?? "");
    i += 1;
  }
  const args = parseArgs(words.slice(1));
  return { directive: { line: start + 1, raw: commandLine, command, args, input, expected: expected.join("\n") }, next: i };
}

/** Normalizes a command's output the way it is stored: no trailing spaces, `ok` when empty. */
export function normalizeOutput(output: string): string {
  const lines = output.split("\n").map((line) => line.trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  assert(!lines.includes(""), `command output must not contain blank lines:\n${output}`);
  return lines.length === 0 ? emptyOutput : lines.join("\n");
}

export interface Mismatch {
  readonly line: number;
  readonly command: string;
  readonly expected: string;
  readonly actual: string;
}

export interface RunResult {
  readonly mismatches: readonly Mismatch[];
  /** The script with every expected output replaced by the actual one. */
  readonly rewritten: string;
}

/**
 * Runs every directive in order through `handler` (which returns the output text) and compares.
 * All blocks run even after a mismatch, so one report shows every divergence of a script.
 */
export function runScript(text: string, handler: (directive: Directive) => string): RunResult {
  const mismatches: Mismatch[] = [];
  const out: string[] = [];
  for (const segment of parseScript(text)) {
    if (segment.kind === "text") {
      out.push(segment.line);
      continue;
    }
    const d = segment.directive;
    const actual = normalizeOutput(runOne(d, handler));
    const commandLines = [d.raw, ...d.input];
    out.push(...commandLines, separator, actual);
    if (actual !== d.expected) mismatches.push({ line: d.line, command: d.raw, expected: d.expected, actual });
  }
  return { mismatches, rewritten: `${out.join("\n")}\n` };
}

function runOne(d: Directive, handler: (directive: Directive) => string): string {
  try {
    return handler(d);
  } catch (error) {
    // Script errors get the line number; anything else (an AssertionError from the core) is a bug
    // and propagates untouched, with the line prepended to its message for context.
    if (error instanceof Error) error.message = `line ${d.line} \`${d.command}\`: ${error.message}`;
    throw error;
  }
}

/** Runs a script file; with `rewrite`, writes the actual outputs back. */
export function runScriptFile(path: string, handler: (directive: Directive) => string, options: { rewrite: boolean }): RunResult {
  const text = readFileSync(path, "utf8");
  const result = runScript(text, handler);
  if (options.rewrite && result.rewritten !== text) writeFileSync(path, result.rewritten);
  return result;
}

/** A readable report of mismatches for a failing test. */
export function formatMismatches(file: string, mismatches: readonly Mismatch[], shownMax = 5): string {
  const shown = mismatches.slice(0, shownMax).map((m) =>
    [`${file}:${m.line}: ${m.command}`, "--- expected", m.expected, "+++ actual", m.actual].join("\n"),
  );
  const more = mismatches.length > shownMax ? [`... and ${mismatches.length - shownMax} more mismatching block(s)`] : [];
  return [...shown, ...more, "(run with REWRITE=1 to regenerate, then review the diff)"].join("\n\n");
}
