import { describe, expect, test } from "bun:test";
import { decodeCommand, encodeCommand, type Command } from "../../server/state/command-codec.ts";
import { BinaryDecodeError } from "../../server/state/binary.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("command codec", () => {
  const commands: Command[] = [
    { kind: "kv-put", key: "a", value: bytes("1") },
    { kind: "kv-put", key: "ключ/ü", value: new Uint8Array(0) },
    { kind: "kv-delete", key: "gone" },
    { kind: "kv-put-batch", items: [] },
    { kind: "kv-put-batch", items: Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: bytes(`v${i}`) })) },
    // Keys written straight into the buffer: 3-byte, 4-byte (surrogate pair) and long ones.
    { kind: "kv-put-batch", items: [{ key: "€€€", value: bytes("x") }, { key: "😀a😀", value: new Uint8Array(300) }, { key: "é".repeat(400), value: bytes("y") }] },
    { kind: "member-set", nodeId: "n-😀", address: "host.example:7000" },
    { kind: "outbox", op: { op: "forwarded", package: "p", epoch: 3, through: 17 } },
    {
      kind: "outbox",
      op: {
        op: "accept-batch",
        batch: {
          package: "pkg-ü",
          atMs: 1_764_000_000_123,
          segments: [
            { requestKey: "req-1", eventKeys: ["src:1", null], events: [bytes("event one"), new Uint8Array(0)] },
            { requestKey: null, eventKeys: [null], events: [new Uint8Array(300).fill(7)] },
          ],
        },
      },
    },
  ];
  for (const command of commands) {
    test(`round-trips ${command.kind} ${JSON.stringify(command).length}`, () => {
      expect(decodeCommand(encodeCommand(command))).toEqual(command);
    });
  }

  test("every truncation of a valid command is a decode error", () => {
    const full = encodeCommand({ kind: "kv-put-batch", items: [{ key: "abc", value: bytes("xyz") }] });
    for (let length = 0; length < full.length; length++) {
      expect(() => decodeCommand(full.subarray(0, length))).toThrow(BinaryDecodeError);
    }
  });

  test("every truncation of an accept batch is a decode error", () => {
    const full = encodeCommand({ kind: "outbox", op: { op: "accept-batch", batch: { package: "p", atMs: 1, segments: [{ requestKey: "k", eventKeys: ["e", null], events: [bytes("a"), bytes("bc")] }] } } });
    for (let length = 0; length < full.length; length++) expect(() => decodeCommand(full.subarray(0, length))).toThrow(BinaryDecodeError);
  });

  const acceptHeader = [1, 8, 0, 0, 0, 1, 0x70, ...new Array(8).fill(0)];
  const malformed: Array<[string, number[]]> = [
    ["an accept batch claiming more requests than its bytes hold", [...acceptHeader, 0x7f, 0xff, 0xff, 0xff]],
    ["an accept request claiming more events than its bytes hold", [...acceptHeader, 0, 0, 0, 1, 0, 0x7f, 0xff, 0xff, 0xff]],
    ["an optional text flag that is neither 0 nor 1", [...acceptHeader, 0, 0, 0, 1, 2]],
    ["unknown version", [9, 1]],
    ["unknown kind", [1, 99]],
    ["trailing bytes", [...encodeCommand({ kind: "kv-delete", key: "k" }), 0]],
    ["absurd batch count", [1, 2, 0xff, 0xff, 0xff, 0xff]],
    ["key not UTF-8", [1, 3, 0, 0, 0, 1, 0xff]],
  ];
  for (const [name, data] of malformed) {
    test(`rejects ${name}`, () => {
      expect(() => decodeCommand(new Uint8Array(data))).toThrow(BinaryDecodeError);
    });
  }
});
