/** The CLI's contract with a user: help, version, and one clear line with exit code 2 for bad config. */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunPath, cleanupAll, runCli, startNode, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);
const cli = [bunPath, "server/main.ts"];

describe("opsconn CLI", () => {
  test("a node started without the recommended allocator setting says so once, at info; with it, nothing", async () => {
    const note = (lines: readonly string[]) => lines.filter((line) => line.includes("runtime setting not as recommended")).map((line) => JSON.parse(line).fields);
    const without = await startNode(cli, ["--node-id", "a1", "--data-dir", tempDir(), "--log-level", "info"], 10_000, { MIMALLOC_PURGE_DELAY: "100" });
    const withIt = await startNode(cli, ["--node-id", "a2", "--data-dir", tempDir(), "--log-level", "info"]);
    expect(note(without.lines)).toEqual([{ name: "MIMALLOC_PURGE_DELAY", recommended: "-1", actual: "100" }]);
    expect(note(withIt.lines)).toEqual([]);
  });

  test("--help lists the commands", async () => {
    const { stdout, exitCode } = await runCli(cli, ["--help"]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain("node ");
    expect(stdout).toContain("version ");
  });

  test("node --help lists the options", async () => {
    const { stdout, exitCode } = await runCli(cli, ["node", "--help"]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain("--data-dir");
  });

  test("version prints the package version", async () => {
    const { stdout, exitCode } = await runCli(cli, ["version"]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/^opsconn \d+\.\d+\.\d+ \(bun /);
  });

  const bad: Array<[string, (dir: string) => string[], RegExp]> = [
    ["an unknown command", () => ["frobnicate"], /unknown command 'frobnicate'/],
    ["an unknown flag", () => ["node", "--prot", "1"], /Unknown option '--prot'/],
    ["a bad port", () => ["node", "--port", "65536"], /port: must be an integer/],
    ["a non-numeric port", () => ["node", "--port", "http"], /port: must be an integer/],
    ["an unknown config key", (dir) => ["node", "-c", writeConfig(dir, "nodeId: a\nlisten: 1\n")], /listen: unknown key/],
    ["an unreadable config file", (dir) => ["node", "-c", join(dir, "missing.yaml")], /cannot read config file .*ENOENT/],
    ["malformed config text", (dir) => ["node", "-c", writeConfig(dir, "port: [1,\n")], /not valid YAML or JSON/],
    ["an unwritable data dir", (dir) => ["node", "--data-dir", join(writeConfig(dir, ""), "sub")], /dataDir: .* is not a writable directory/],
  ];
  for (const [name, args, message] of bad) {
    test(`${name} gives one clear line and exit code 2`, async () => {
      const { stderr, exitCode } = await runCli(cli, args(tempDir()));
      expect(exitCode).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr.trim().split("\n")).toHaveLength(1);
    });
  }
});

function writeConfig(dir: string, text: string): string {
  const path = join(dir, "node.yaml");
  writeFileSync(path, text);
  return path;
}
