/** Where a package's WebSocket consumers are sent (consumer-registry.ts locateConsumerEndpoint), from the replicated state. */
import { expect, test } from "bun:test";
import { locateConsumerEndpoint } from "../../../server/connector/forwarding/consumer-registry.ts";
import { ReplicatedState } from "../../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../../server/state/command-codec.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";

const model = (packages: Array<Record<string, unknown>>) => ({
  apiVersion: "opsconn/v1",
  connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a:1" }] },
  policies: [{ name: "in", type: "event-listener", path: "x", inputFormat: "json" }, { name: "in2", type: "event-listener", path: "y", inputFormat: "json" }],
  packages,
  aspects: [{ name: "a", ciType: "Running Software", packages: packages.map((p) => p["name"]) }],
  templates: [{ name: "t", ciType: "Operations Connector System", aspects: ["a"] }],
});

test("a WebSocket package removed while it holds undelivered events is still served at its holder; once drained, or never deployed, it is unavailable", () => {
  const state = new ReplicatedState();
  let index = 0;
  const apply = (command: Command) => state.apply([{ index: ++index, term: 1, type: "normal", data: encodeCommand(command) }]).results[0]!;
  apply({ kind: "member-set", nodeId: "n1", address: "a:1" });
  apply({ kind: "config", op: { op: "put-model", document: model([{ name: "ws", policies: ["in"], forward: { type: "websocket" } }]) } });
  apply({ kind: "config", op: { op: "deploy", template: "t", atMs: 1, byteBudgets: true } });
  apply({ kind: "config", op: { op: "assign", basisIndex: 0, changes: [{ package: "ws", node: "n1", epoch: 1 }] } });
  apply({ kind: "outbox", op: { op: "accept-batch", batch: { package: "ws", atMs: 1, segments: [{ requestKey: null, eventKeys: [null, null], events: [encodeOprEvent({ ...emptyOprEvent(), title: "a" }), encodeOprEvent({ ...emptyOprEvent(), title: "b" })] }] } } });
  expect(locateConsumerEndpoint(state, "ws")).toEqual({ kind: "elsewhere", holder: "n1", address: "a:1" });
  // The next deployment drops the package: two events are still to be delivered.
  apply({ kind: "config", op: { op: "put-model", document: model([{ name: "other", policies: ["in2"] }]) } });
  apply({ kind: "config", op: { op: "deploy", template: "t", atMs: 2, byteBudgets: true } });
  expect(locateConsumerEndpoint(state, "ws")).toEqual({ kind: "elsewhere", holder: "n1", address: "a:1" });
  expect(apply({ kind: "outbox", op: { op: "forwarded", package: "ws", epoch: 1, through: 2 } }).ok).toBe(true);
  expect(locateConsumerEndpoint(state, "ws").kind).toBe("unavailable");
  expect(locateConsumerEndpoint(state, "never").kind).toBe("unavailable");
});
