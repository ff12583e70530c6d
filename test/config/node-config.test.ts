import { describe, expect, test } from "bun:test";
import { defaultNodeConfig, ensureDataDir, parseNodeConfig, ConfigError } from "../../server/config/node-config.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { afterAll } from "bun:test";

afterAll(cleanupAll);

describe("parseNodeConfig", () => {
  test("no layers gives the defaults", () => {
    expect(parseNodeConfig([])).toEqual({ ok: true, config: defaultNodeConfig });
  });

  test("later layers override earlier ones", () => {
    const result = parseNodeConfig([{ port: 8080, nodeId: "a" }, { port: 9090 }]);
    expect(result).toEqual({ ok: true, config: { ...defaultNodeConfig, nodeId: "a", port: 9090 } });
  });

  const invalid: Array<[string, unknown, string]> = [
    ["unknown key", { prot: 80 }, "prot: unknown key"],
    ["port too large", { port: 70000 }, "port: must be an integer"],
    ["port not a number", { port: "80" }, "port: must be an integer"],
    ["port fractional", { port: 80.5 }, "port: must be an integer"],
    ["bad node id", { nodeId: "a b" }, "nodeId: must be"],
    ["empty data dir", { dataDir: "" }, "dataDir: must be a non-empty path"],
    ["bad log level", { logLevel: "loud" }, "logLevel: must be one of debug, info, warn, error"],
    ["not an object", ["port"], "config: must be an object"],
  ];
  for (const [name, layer, expected] of invalid) {
    test(`rejects ${name}`, () => {
      const result = parseNodeConfig([layer]);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems.join("\n")).toContain(expected);
    });
  }

  test("reports every problem at once", () => {
    const result = parseNodeConfig([{ port: -1, logLevel: "x", nope: 1 }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems).toHaveLength(3);
  });
});

describe("ensureDataDir", () => {
  test("creates a missing directory", () => {
    const dir = join(tempDir(), "a/b");
    expect(ensureDataDir(dir)).toBe(dir);
  });

  test("refuses a path below a regular file", () => {
    const file = join(tempDir(), "file");
    writeFileSync(file, "");
    expect(() => ensureDataDir(join(file, "data"))).toThrow(ConfigError);
  });
});

describe("cluster settings", () => {
  const secret = "0123456789abcdef";
  const cases: Array<[string, Record<string, unknown>, string | null]> = [
    ["a founder listed in its initial cluster", { nodeId: "a", initialCluster: { a: "127.0.0.1:1", b: "127.0.0.1:2" }, clusterSecret: secret }, null],
    ["a joiner", { nodeId: "c", join: true, initialCluster: { a: "127.0.0.1:1" }, clusterSecret: secret }, null],
    ["a founder missing from its initial cluster", { nodeId: "z", initialCluster: { a: "127.0.0.1:1" } }, "initialCluster: does not list this node 'z'"],
    ["a multi-node group without a secret", { nodeId: "a", initialCluster: { a: "127.0.0.1:1", b: "127.0.0.1:2" } }, "clusterSecret: required"],
    ["a short secret", { clusterSecret: "short" }, "clusterSecret: must be at least 16 bytes"],
    ["a joiner that knows no member", { nodeId: "a", join: true, clusterSecret: secret }, "initialCluster: a joining node needs the addresses of existing members"],
    ["an address without a port", { nodeId: "a", initialCluster: { a: "127.0.0.1" } }, "address of 'a' must be host:port"],
    ["a bad advertise address", { advertise: "x:99999" }, "advertise: must be host:port"],
    ["heartbeats slower than elections", { heartbeatTicks: 10, electionTicks: 10 }, "heartbeatTicks: must be below electionTicks"],
  ];
  for (const [name, layer, problem] of cases) {
    test(name, () => {
      const result = parseNodeConfig([layer]);
      if (problem === null) expect(result.ok).toBe(true);
      else {
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.problems.join("\n")).toContain(problem);
      }
    });
  }
});
