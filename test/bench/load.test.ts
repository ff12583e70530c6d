/** The load generator's choice of target per request (bench/support/load.ts), against real local servers. */
import { afterEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { runLoad } from "../../bench/support/load.ts";

interface Seen {
  readonly server: Server<unknown>;
  readonly url: string;
  /** Client index (from the kv key the request writes) → requests it sent here. */
  readonly byClient: Map<number, number>;
}

let servers: Server<unknown>[] = [];
afterEach(() => {
  for (const server of servers) server.stop(true);
  servers = [];
});

/** A target answering `status` to every request, recording which client each came from. */
function target(status: () => number): Seen {
  const byClient = new Map<number, number>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const client = Number(/bench-(\d+)-/.exec(new URL(request.url).pathname)?.[1]);
      byClient.set(client, (byClient.get(client) ?? 0) + 1);
      return new Response("{}", { status: status(), headers: { "content-type": "application/json" } });
    },
  });
  servers.push(server);
  return { server, url: `http://127.0.0.1:${server.port}`, byClient };
}

const workload = { kind: "opsconn-put", valueBytes: 8, keySpace: 10 } as const;

describe("targetChoice", () => {
  test("rotate (the default): every client's requests go round all targets", async () => {
    const targets = [target(() => 200), target(() => 200), target(() => 200)];
    const result = await runLoad({ targets: targets.map((t) => t.url), clients: 6, workload, durationMs: 10_000, requestsMax: 300 });
    expect(result.failures).toBe(0);
    for (const t of targets) expect([...t.byClient.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("pinned: each client keeps to one target, and the clients are spread over them", async () => {
    const targets = [target(() => 200), target(() => 200), target(() => 200)];
    const result = await runLoad({ targets: targets.map((t) => t.url), clients: 6, targetChoice: "pinned", workload, durationMs: 10_000, requestsMax: 300 });
    expect(result.failures).toBe(0);
    expect(targets.map((t) => [...t.byClient.keys()].sort())).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
  });

  test("pinned: a client moves to the next target only after a failure worth retrying, and stays there", async () => {
    const failing = target(() => 503);
    const healthy = target(() => 200);
    const result = await runLoad({ targets: [failing.url, healthy.url], clients: 2, targetChoice: "pinned", workload, durationMs: 10_000, requestsMax: 100, retryBackoffMs: 0 });
    expect(result.failures).toBe(0);
    expect(result.errors).toBe(1); // client 0's first attempt; after it, client 0 stays on the healthy target
    expect(failing.byClient).toEqual(new Map([[0, 1]]));
    expect(healthy.byClient.get(0)! + healthy.byClient.get(1)!).toBeGreaterThanOrEqual(100);
  });

  test("pinned: a refusal that retrying cannot fix does not move the client", async () => {
    const refusing = target(() => 400);
    const other = target(() => 200);
    const result = await runLoad({ targets: [refusing.url, other.url], clients: 1, targetChoice: "pinned", workload, durationMs: 300, attemptsMax: 1 });
    expect(result.failures).toBeGreaterThan(0);
    expect(other.byClient.size).toBe(0);
  });
});
