import { describe, expect, test } from "bun:test";
import { Logger } from "../../server/log/logger.ts";

function capture(pretty: boolean, level: "debug" | "info" = "info") {
  const lines: string[] = [];
  const log = new Logger({ node: "n1", level, pretty, sink: { write: (l) => lines.push(l) }, clock: () => new Date(0) });
  return { log, lines };
}

describe("Logger", () => {
  test("writes one JSON object per line with level, time, node, msg and fields", () => {
    const { log, lines } = capture(false);
    log.info("hello", { port: 1 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith("\n")).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({ level: "info", time: "1970-01-01T00:00:00.000Z", node: "n1", msg: "hello", fields: { port: 1 } });
  });

  test("drops lines below the level", () => {
    const { log, lines } = capture(false, "info");
    log.debug("hidden");
    expect(lines).toHaveLength(0);
  });

  test("child loggers add their fields; errors keep name and message", () => {
    const { log, lines } = capture(false);
    log.child({ component: "raft" }).warn("oops", { error: new TypeError("bad") });
    expect(JSON.parse(lines[0]!).fields).toEqual({ component: "raft", error: { name: "TypeError", message: "bad" } });
  });

  test("pretty mode is one readable line", () => {
    const { log, lines } = capture(true);
    log.error("boom", { code: 7 });
    expect(lines[0]).toBe("00:00:00.000 ERROR [n1] boom  code=7\n");
  });
});
