/**
 * @module Tests of the data-driven runner itself, with a fake command set, so a parser bug is never
 * mistaken for a Raft bug when an interaction script fails.
 */
import { describe, expect, test } from "bun:test";
import { type Directive, normalizeOutput, parseArgs, parseList, parseScript, runScript, ScriptError, tokenize } from "./datadriven.ts";

/** A fake command set: `echo` repeats its words, `add` sums, `count` keeps state across blocks. */
function fakeHandler(): (d: Directive) => string {
  let counter = 0;
  return (d) => {
    switch (d.command) {
      case "echo":
        return d.args.rest().join(" ");
      case "add": {
        const sum = d.args.nextInt("a") + d.args.nextInt("b");
        d.args.done();
        return String(sum);
      }
      case "count":
        counter += d.args.int("by", 1);
        d.args.done();
        return `counter=${counter}`;
      case "lines":
        return d.input.map((line) => `> ${line}`).join("\n");
      case "nothing":
        return "";
      default:
        throw new ScriptError(`unknown command ${d.command}`);
    }
  };
}

describe("tokenize", () => {
  const cases: ReadonlyArray<readonly [string, readonly string[]]> = [
    ["propose 1 x", ["propose", "1", "x"]],
    ["  spaced\tout  ", ["spaced", "out"]],
    ['propose 1 "hello world"', ["propose", "1", "hello world"]],
    ['propose 1 "say \\"hi\\""', ["propose", "1", 'say "hi"']],
    ["partition (1, 2) (3,4)", ["partition", "(1, 2)", "(3,4)"]],
    ['data="a b" voters=(1, 2)', ["data=a b", "voters=(1, 2)"]],
  ];
  for (const [line, words] of cases) test(line, () => expect(tokenize(line)).toEqual([...words]));

  test("rejects unbalanced input", () => {
    expect(() => tokenize("partition (1,2")).toThrow(ScriptError);
    expect(() => tokenize('propose 1 "open')).toThrow(ScriptError);
  });
});

describe("args", () => {
  test("positional, named, lists, typed getters", () => {
    const args = parseArgs(tokenize("3 voters=(1,2,3) learners=() prevote=true election=10"));
    expect(args.nextInt("count")).toBe(3);
    expect(args.list("voters")).toEqual(["1", "2", "3"]);
    expect(args.list("learners")).toEqual([]);
    expect(args.bool("prevote", false)).toBe(true);
    expect(args.int("election", 5)).toBe(10);
    expect(args.int("heartbeat", 1)).toBe(1);
    args.done();
  });

  test("done() rejects leftovers so typos fail loudly", () => {
    const args = parseArgs(tokenize("1 tcks=3"));
    args.next("id");
    expect(() => args.done()).toThrow("unknown option(s): tcks");
    const extra = parseArgs(tokenize("1 2"));
    extra.next("id");
    expect(() => extra.done()).toThrow("unexpected argument(s): 2");
  });

  test("lists", () => {
    expect(parseList("(1,2)")).toEqual(["1", "2"]);
    expect(parseList("()")).toEqual([]);
    expect(parseList("4")).toEqual(["4"]);
  });
});

describe("scripts", () => {
  const script = [
    "# a comment survives rewriting",
    "echo hello there",
    "----",
    "hello there",
    "",
    "count",
    "----",
    "counter=1",
    "",
    "count by=2",
    "----",
    "counter=1",
    "",
    "lines",
    "first",
    "second",
    "----",
    "> first",
    "> second",
    "",
    "nothing",
    "----",
    "",
  ].join("\n");

  test("parses text and directives", () => {
    const segments = parseScript(script);
    const directives = segments.flatMap((s) => (s.kind === "directive" ? [s.directive] : []));
    expect(directives.map((d) => d.command)).toEqual(["echo", "count", "count", "lines", "nothing"]);
    expect(directives[3]?.input).toEqual(["first", "second"]);
    expect(directives[4]?.expected).toBe("");
    expect(directives[0]?.line).toBe(2);
  });

  test("reports mismatches with line numbers and keeps running", () => {
    const result = runScript(script, fakeHandler());
    expect(result.mismatches.map((m) => [m.line, m.actual])).toEqual([
      [10, "counter=3"],
      [21, "ok"],
    ]);
  });

  test("rewrite fills in actual outputs and is then stable", () => {
    const first = runScript(script, fakeHandler());
    expect(first.rewritten).toContain("count by=2\n----\ncounter=3\n");
    expect(first.rewritten).toContain("# a comment survives rewriting\n");
    expect(first.rewritten.endsWith("nothing\n----\nok\n")).toBe(true);
    const second = runScript(first.rewritten, fakeHandler());
    expect(second.mismatches).toEqual([]);
    expect(second.rewritten).toBe(first.rewritten);
  });

  test("a missing separator and unknown commands are script errors", () => {
    expect(() => parseScript("echo a\n\necho b\n----\nb\n")).toThrow(ScriptError);
    expect(() => runScript("bogus\n----\nok\n", fakeHandler())).toThrow("line 1 `bogus`: unknown command bogus");
  });

  test("outputs are normalized: trailing spaces trimmed, empty is ok, no blank lines", () => {
    expect(normalizeOutput("a  \nb\n\n")).toBe("a\nb");
    expect(normalizeOutput("")).toBe("ok");
    expect(() => normalizeOutput("a\n\nb")).toThrow();
  });
});
