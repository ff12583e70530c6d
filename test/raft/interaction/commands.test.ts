/**
 * @module Error paths of the interaction commands: a script mistake must fail loudly with the
 * line, never be absorbed into an expected output that a REWRITE would then bless.
 */
import { describe, expect, test } from "bun:test";
import { runCommand } from "./commands.ts";
import { runScript, ScriptError } from "./datadriven.ts";
import { InteractionEnv } from "./env.ts";

function run(lines: readonly string[]): string {
  const env = new InteractionEnv();
  const script = lines.map((line) => `${line}\n----\nok\n`).join("\n");
  return runScript(script, (d) => runCommand(env, d)).rewritten;
}

describe("script errors", () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], string]> = [
    ["unknown command", ["frobnicate 1"], "unknown command frobnicate"],
    ["misspelt option", ["add-nodes 3 voters=(1,2,3) prevot=true"], "unknown option(s): prevot"],
    ["unknown node", ["add-nodes 1 voters=(1)", "propose 7 x"], "no node 7"],
    ["voter outside the added nodes", ["add-nodes 2 voters=(1,2,3)"], "bootstrap voter 3"],
    ["compact off the applied index", ["add-nodes 1 voters=(1)", "stabilize", "compact 1 2"], "compact index must be the applied index 1"],
    ["campaign by a non-voter", ["add-nodes 1", "campaign 1"], "did not campaign"],
    ["stepping a crashed node", ["add-nodes 1 voters=(1)", "crash 1", "tick 1"], "node 1 is down"],
    ["restarting a running node", ["add-nodes 1 voters=(1)", "restart 1"], "is running"],
  ];
  for (const [name, lines, message] of cases) {
    test(name, () => {
      expect(() => run(lines)).toThrow(ScriptError);
      expect(() => run(lines)).toThrow(message);
    });
  }
});

describe("network", () => {
  test("deliver-msgs drop= only drops; positional ids only deliver to those", () => {
    const out = run([
      "add-nodes 3 voters=(1,2,3)",
      "stabilize",
      "campaign 1",
      "process-ready 1",
      "deliver-msgs drop=(2)",
      "raft-state",
      "deliver-msgs 3",
      "raft-state",
    ]);
    // After dropping 2's request, 2 is untouched (term 1) and 3's request is still queued.
    expect(out).toContain("deliver-msgs drop=(2)\n----\n> 2 receiving messages\n  1->2 vote term=2 index=3 logTerm=1 (dropped)\n");
    expect(out).toContain("2: follower (voter) term=1");
    expect(out).toContain("deliver-msgs 3\n----\n> 3 receiving messages\n  1->3 vote term=2 index=3 logTerm=1\n  3 became follower at term 2\n");
  });

  test("messages to a crashed node are lost, not held for its restart", () => {
    const out = run(["add-nodes 3 voters=(1,2,3)", "stabilize", "crash 2", "campaign 1", "process-ready 1", "restart 2", "deliver-msgs 2"]);
    expect(out).toContain("1->2 vote term=2 index=3 logTerm=1 (dropped: node down)");
    expect(out).toContain("deliver-msgs 2\n----\nok\n");
  });
});
