/**
 * @module An undelivered event as the outbox hands it to the forwarder: the bytes it stores, decoded
 * only when a target asks for the event. The OMi target writes its XML straight from the bytes
 * (omi-xml-bytes.ts) and never decodes; the webhook and WebSocket targets do.
 */
import { decodeOprEvent } from "../connector/events/event-codec.ts";
import type { OprEvent } from "../connector/events/event-record.ts";
import type { OutboxEntry } from "./outbox-types.ts";

export class PendingEvent implements OutboxEntry {
  private decoded: OprEvent | null = null;

  constructor(
    readonly seq: number,
    readonly id: string,
    readonly acceptedAtMs: number,
    readonly bytes: Uint8Array,
  ) {}

  get event(): OprEvent {
    return (this.decoded ??= decodeOprEvent(this.bytes));
  }
}
