import { describe, expect, test } from "bun:test";
import { defaultNodeConfig, ensureDataDir, parseNodeConfig, readBasicAuth, ConfigError } from "../../server/config/node-config.ts";
import { basicAuthLimits } from "../../server/constants.ts";
import { parseBasicAuthFlag, UsageError } from "../../server/cli/usage.ts";
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

describe("local policies", () => {
  const pull = { name: "lab-pull", type: "metric-pull", url: "http://127.0.0.1:9/metrics", intervalSec: 1, timeoutSec: 1, inputFormat: "json" };
  test("a pull policy runs locally", () => {
    const result = parseNodeConfig([{ localPolicies: [pull] }]);
    expect(result.ok).toBe(true);
  });
  test("a listener policy is refused, named, with where it belongs", () => {
    const listener = { name: "nagios-in", type: "event-listener", path: "nagios", inputFormat: "json", unmatched: "send" };
    const result = parseNodeConfig([{ localPolicies: [pull, listener] }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems).toEqual(["localPolicies: 'nagios-in' is of type event-listener: listener policies run in an HA package (a local one would not be served); only pull policies run locally"]);
  });
});

describe("basic auth", () => {
  const nagios = { user: "nagios", passwordEnv: "NAGIOS_PASSWORD", role: "ingest" as const };

  test("a valid user is kept as written", () => {
    const basicAuth = [nagios, { user: "svc.omi@corp", passwordEnv: "_OMI_2", role: "admin", scope: "all" }];
    expect(parseNodeConfig([{ basicAuth }])).toEqual({ ok: true, config: { ...defaultNodeConfig, basicAuth } as typeof defaultNodeConfig });
  });

  const invalid: Array<[string, unknown, string]> = [
    ["not a list", { user: "nagios" }, "basicAuth: must be a list"],
    ["a user twice", [nagios, { ...nagios, passwordEnv: "OTHER" }], "basicAuth: user 'nagios' is listed twice"],
    ["a bad role", [{ ...nagios, role: "root" }], "basicAuth: [0].role: must be admin, ingest or read"],
    ["a ':' in the user", [{ ...nagios, user: "na:gios" }], "basicAuth: [0].user: must be 1-64 characters"],
    ["an empty user", [{ ...nagios, user: "" }], "[0].user: must be"],
    ["a space in the user", [{ ...nagios, user: "na gios" }], "[0].user: must be"],
    ["a user over 64 characters", [{ ...nagios, user: "u".repeat(65) }], "[0].user: must be"],
    ["a missing passwordEnv", [{ user: "nagios", role: "ingest" }], "[0].passwordEnv: must name an environment variable"],
    ["a passwordEnv that is no variable name", [{ ...nagios, passwordEnv: "1PASS" }], "[0].passwordEnv: must name an environment variable"],
    ["a bad scope", [{ ...nagios, scope: "api" }], "[0].scope: must be events"],
    ["an unknown key", [{ ...nagios, realm: "x" }], "[0]: unknown key realm"],
    ["an entry that is not an object", ["nagios"], "[0]: must be { user, passwordEnv, role, scope? }"],
    ["too many users", Array.from({ length: 65 }, (_, i) => ({ ...nagios, user: `u${i}` })), "basicAuth: must list at most 64 users"],
  ];
  for (const [name, basicAuth, expected] of invalid) {
    test(`rejects ${name}`, () => {
      const result = parseNodeConfig([{ basicAuth }]);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems.join("\n")).toContain(expected);
    });
  }

  test("a password in the config is refused, and never echoed", () => {
    const result = parseNodeConfig([{ basicAuth: [{ ...nagios, password: "hunter2-in-the-file" }] }]);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.join("\n")).toContain("[0].password: not accepted in the config");
      expect(result.problems.join("\n")).not.toContain("hunter2");
    }
  });

  test("readBasicAuth reads each password from its variable; scope defaults to the event listener", () => {
    const users = [nagios, { user: "wide", passwordEnv: "WIDE", role: "read", scope: "all" }] as const;
    expect(readBasicAuth(users, { NAGIOS_PASSWORD: "s3cret", WIDE: "w" })).toEqual([
      { user: "nagios", password: "s3cret", role: "ingest", scope: "events" },
      { user: "wide", password: "w", role: "read", scope: "all" },
    ]);
  });

  test("a missing or empty variable is a config error naming each one", () => {
    const users = [nagios, { user: "other", passwordEnv: "OTHER_PASSWORD", role: "read" }] as const;
    expect(() => readBasicAuth(users, {})).toThrow(ConfigError);
    let message = "";
    try {
      readBasicAuth(users, { OTHER_PASSWORD: "" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("basicAuth[0].passwordEnv: environment variable NAGIOS_PASSWORD (password of 'nagios') is not set or empty");
    expect(message).toContain("basicAuth[1].passwordEnv: environment variable OTHER_PASSWORD");
  });

  test("an over-long password is a config error", () => {
    expect(() => readBasicAuth([nagios], { NAGIOS_PASSWORD: "p".repeat(basicAuthLimits.passwordBytesMax + 1) })).toThrow("exceeds 1024 bytes");
  });
});

describe("--basic-auth ROLE=USER:ENVVAR", () => {
  test("becomes a basicAuth entry that validates", () => {
    const entry = parseBasicAuthFlag("ingest=nagios:NAGIOS_PASSWORD");
    expect(entry).toEqual({ role: "ingest", user: "nagios", passwordEnv: "NAGIOS_PASSWORD" });
    expect(parseNodeConfig([{ basicAuth: [entry] }]).ok).toBe(true);
  });

  test("a bad role is named by validation", () => {
    const result = parseNodeConfig([{ basicAuth: [parseBasicAuthFlag("root=nagios:NAGIOS_PASSWORD")] }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join("\n")).toContain("basicAuth: [0].role: must be admin, ingest or read");
  });

  test("the same user twice is refused", () => {
    const result = parseNodeConfig([{ basicAuth: ["ingest=nagios:A", "read=nagios:B"].map(parseBasicAuthFlag) }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join("\n")).toContain("user 'nagios' is listed twice");
  });

  test("a password where the variable name goes is refused and not echoed", () => {
    const result = parseNodeConfig([{ basicAuth: [parseBasicAuthFlag("ingest=nagios:hunter2!")] }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join("\n")).not.toContain("hunter2");
  });

  for (const flag of ["zzuser:hunter2", "ingest=zzuser", "=zzuser:X", "ingestzz"]) {
    test(`'${flag}' is a usage error that does not echo the flag`, () => {
      expect(() => parseBasicAuthFlag(flag)).toThrow(UsageError);
      expect(() => parseBasicAuthFlag(flag)).toThrow("expected ROLE=USER:ENVVAR");
      expect(() => parseBasicAuthFlag(flag)).not.toThrow(/hunter2|zz/);
    });
  }
});
