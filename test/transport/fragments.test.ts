import { describe, expect, test } from "bun:test";
import { CodecError, decodeFrame, encodeFrame, type Frame } from "../../server/transport/codec.ts";
import { OutgoingFragments, Reassembly } from "../../server/transport/fragments.ts";
import { transportLimits } from "../../server/constants.ts";

type Fragment = Extract<Frame, { type: "fragment" }>;

function appFrame(bytes: number, fill: number): Uint8Array {
  const body = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) body[i] = (i * 31 + fill) & 0xff;
  return encodeFrame({ type: "app", items: [{ kind: "forward-request", requestId: fill, body }] });
}

function drain(out: OutgoingFragments): Fragment[] {
  const fragments: Fragment[] = [];
  for (let next = out.next(); next !== null; next = out.next()) {
    const frame = decodeFrame(next, { bytesMax: 1000 + transportLimits.fragmentHeaderBytesMax });
    if (frame.type !== "fragment") throw new Error("not a fragment");
    fragments.push(frame);
  }
  return fragments;
}

describe("fragments", () => {
  test("large frames go out as in-order slices and come back byte for byte, one after another", () => {
    const out = new OutgoingFragments(1000);
    const frames = [appFrame(4321, 1), appFrame(1001, 2), appFrame(2000 - 11, 3)];
    for (const f of frames) expect(out.add(f)).toBe(true);
    const fragments = drain(out);
    expect(fragments.map((f) => f.chunk.length).every((n) => n <= 1000)).toBe(true);
    const reassembly = new Reassembly();
    const rebuilt = fragments.map((f) => reassembly.accept(f)).filter((w) => w !== null);
    expect(rebuilt).toEqual(frames);
    expect(out.pending).toBe(0);
  });

  test("at most fragmentedFramesMax large frames wait; more are refused", () => {
    const out = new OutgoingFragments(100);
    for (let i = 0; i < transportLimits.fragmentedFramesMax; i++) expect(out.add(appFrame(200, i))).toBe(true);
    expect(out.add(appFrame(200, 99))).toBe(false);
    out.clear();
    expect(out.pending).toBe(0);
    expect(out.next()).toBeNull();
  });

  test("waiting large frames are also bounded by frameBytesMax in all: a re-sent snapshot does not pile up", () => {
    const out = new OutgoingFragments();
    // Untouched allocations: the OS backs them lazily, so this costs no real memory.
    const big = new Uint8Array(Math.floor(transportLimits.frameBytesMax * 0.6));
    expect(out.add(big)).toBe(true);
    expect(out.add(big)).toBe(false);
    expect(out.pending).toBe(1);
    out.clear();
    expect(out.add(big)).toBe(true);
  });

  const whole = { totalBytes: 3000, chunk: new Uint8Array(1000).fill(7) };
  const misuse: Array<[string, Fragment[], string]> = [
    ["a slice with no frame begun", [{ type: "fragment", ...whole, offset: 1000 }], "no frame begun"],
    ["a gap", [{ type: "fragment", ...whole, offset: 0 }, { type: "fragment", ...whole, offset: 2000 }], "does not continue"],
    ["a replayed slice", [{ type: "fragment", ...whole, offset: 0 }, { type: "fragment", ...whole, offset: 0 }], "does not continue"],
    ["another frame spliced in", [{ type: "fragment", ...whole, offset: 0 }, { type: "fragment", totalBytes: 5000, offset: 1000, chunk: whole.chunk }], "does not continue"],
    ["a slice past its frame", [{ type: "fragment", totalBytes: 1500, offset: 0, chunk: new Uint8Array(1000) }, { type: "fragment", totalBytes: 1500, offset: 1000, chunk: new Uint8Array(1000) }], "ends past"],
    ["a frame that fits one message", [{ type: "fragment", totalBytes: 10, offset: 0, chunk: new Uint8Array(10) }], "fits one message"],
    ["an empty slice", [{ type: "fragment", ...whole, offset: 0, chunk: new Uint8Array(0) }], "empty fragment"],
    ["a frame beyond frameBytesMax", [{ type: "fragment", totalBytes: transportLimits.frameBytesMax + 1, offset: 0, chunk: whole.chunk }], "exceeds the limit"],
  ];

  test.each(misuse)("reassembly refuses %s with a CodecError", (_name, fragments, message) => {
    const run = () => {
      const reassembly = new Reassembly();
      for (const f of fragments) reassembly.accept(f);
    };
    expect(run).toThrow(CodecError);
    expect(run).toThrow(message);
  });

  test("the fragment frame round-trips through the codec", () => {
    const frame: Frame = { type: "fragment", totalBytes: 2 ** 30, offset: 2 ** 29, chunk: new Uint8Array([1, 2, 3]) };
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
  });
});
