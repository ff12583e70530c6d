/**
 * An EventForwarder over a real Outbox holding `events` events of package "pkg" (held by n1 at
 * epoch 1), for forwarder tests against real receivers. The group it proposes to applies each
 * outbox op straight to that outbox, in order: the forwarder's Raft side without the cluster
 * (the multi-process tests in test/it run the real one).
 */
import { EventForwarder } from "../../server/connector/forwarding/event-forwarder.ts";
import type { ForwardTarget } from "../../server/connector/forwarding/forward-target.ts";
import { Outbox } from "../../server/state/outbox.ts";
import { decodeCommand } from "../../server/state/command-codec.ts";
import { emptyOprEvent, type OprEvent } from "../../server/connector/events/event-record.ts";
import { Logger } from "../../server/log/logger.ts";

const quiet = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });

export function outboxForwarding(options: { events: number; target: ForwardTarget; eventOf?: (n: number) => OprEvent; batchEventsMax?: number }) {
  const eventOf = options.eventOf ?? ((n: number) => ({ ...emptyOprEvent(), title: `event ${n}` }));
  const outbox = new Outbox();
  const context = { holders: new Map([["pkg", { node: "n1", epoch: 1 }]]), deployed: new Set(["pkg"]) };
  const { events } = options;
  outbox.apply({ op: "accept", package: "pkg", atMs: 1, requestKey: null, eventKeys: Array(events).fill(null), events: Array.from({ length: events }, (_, i) => eventOf(i + 1)) }, 1, context);
  let index = 1;
  const group = {
    propose: async (data: Uint8Array) => {
      const command = decodeCommand(data);
      if (command.kind !== "outbox") throw new Error(`unexpected command ${command.kind}`);
      return { index: ++index, result: outbox.apply(command.op, index, context) };
    },
    waitApplied: async () => {},
  };
  const forwarder = new EventForwarder({
    packageName: "pkg",
    epoch: 1,
    mayAct: () => true,
    group: group as never,
    state: { outbox } as never,
    target: options.target,
    log: quiet,
    ...(options.batchEventsMax === undefined ? {} : { batchEventsMax: options.batchEventsMax }),
  });
  return { forwarder, outbox, cursor: () => outbox.status()[0]?.cursor ?? 0 };
}
