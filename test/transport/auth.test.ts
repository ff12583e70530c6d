/**
 * @module Peer authentication: the HMAC proofs (auth.ts) and both handshake state machines
 * (handshake.ts), driven frame by frame with fixed nonces — no sockets.
 */
import { describe, expect, test } from "bun:test";
import { transportLimits } from "../../server/constants.ts";
import { acceptorProof, dialerProof, proofsEqual, secretBytes, verifyAcceptorProof, verifyDialerProof } from "../../server/transport/auth.ts";
import type { Frame } from "../../server/transport/codec.ts";
import { AcceptorHandshake, DialerHandshake, type HandshakeStep } from "../../server/transport/handshake.ts";

const secret = secretBytes("correct horse battery staple");
const wrongSecret = secretBytes("correct horse battery stapler");
const nonceA = new Uint8Array(transportLimits.nonceBytes).fill(0xa1);
const nonceB = new Uint8Array(transportLimits.nonceBytes).fill(0xb2);
const nonceC = new Uint8Array(transportLimits.nonceBytes).fill(0xc3);
const base = { secret, acceptorNonce: nonceA, dialerId: "a", acceptorId: "b" };

describe("HMAC proofs", () => {
  test("a dialer proof made with the secret verifies", () => {
    expect(verifyDialerProof({ ...base, proof: dialerProof(base) })).toBe(true);
  });

  const refused: [string, Parameters<typeof verifyDialerProof>[0]][] = [
    ["wrong secret", { ...base, proof: dialerProof({ ...base, secret: wrongSecret }) }],
    ["replayed against a new nonce", { ...base, acceptorNonce: nonceC, proof: dialerProof(base) }],
    ["altered nonce", { ...base, proof: dialerProof({ ...base, acceptorNonce: nonceB }) }],
    ["other dialer id", { ...base, proof: dialerProof({ ...base, dialerId: "c" }) }],
    ["ids swapped", { ...base, proof: dialerProof({ ...base, dialerId: "b", acceptorId: "a" }) }],
    ["truncated proof", { ...base, proof: dialerProof(base).subarray(0, 31) }],
    ["acceptor proof reflected as a dialer proof", { ...base, proof: acceptorProof({ ...base, dialerNonce: nonceA }) }],
  ];
  test.each(refused)("refused: %s", (_name, input) => {
    expect(verifyDialerProof(input)).toBe(false);
  });

  test("acceptor proof binds both nonces", () => {
    const proof = acceptorProof({ ...base, dialerNonce: nonceB });
    expect(verifyAcceptorProof({ ...base, dialerNonce: nonceB, proof })).toBe(true);
    expect(verifyAcceptorProof({ ...base, dialerNonce: nonceC, proof })).toBe(false);
    expect(verifyAcceptorProof({ ...base, acceptorNonce: nonceC, dialerNonce: nonceB, proof })).toBe(false);
  });

  test("proofsEqual handles unequal lengths without throwing", () => {
    expect(proofsEqual(new Uint8Array(32), new Uint8Array(31))).toBe(false);
  });

  test("short secrets are refused", () => {
    expect(() => secretBytes("short")).toThrow("at least");
  });
});

interface Pair {
  readonly dialer: DialerHandshake;
  readonly acceptor: AcceptorHandshake;
}

function pair(options: { dialerSecret?: Uint8Array; members?: string[]; dialerId?: string; peerId?: string } = {}): Pair {
  const members = options.members ?? ["a"];
  return {
    dialer: new DialerHandshake({ selfId: options.dialerId ?? "a", peerId: options.peerId ?? "b", secret: options.dialerSecret ?? secret, nonce: nonceB }),
    acceptor: new AcceptorHandshake({
      selfId: "b",
      secret,
      nonce: nonceA,
      refuseDialer: (id) => (members.includes(id) ? null : `${id} is not a member`),
    }),
  };
}

/** Plays the handshake to its end; returns each side's final step. */
function play({ dialer, acceptor }: Pair): { dialer: HandshakeStep | null; acceptor: HandshakeStep | null } {
  let toAcceptor: Frame | null = dialer.opening;
  let last = { dialer: null as HandshakeStep | null, acceptor: null as HandshakeStep | null };
  for (let round = 0; round < 4 && toAcceptor !== null; round++) {
    const a = acceptor.receive(toAcceptor);
    last = { ...last, acceptor: a };
    if (a.send === null) break;
    const d = dialer.receive(a.send);
    last = { ...last, dialer: d };
    toAcceptor = d.send;
  }
  return last;
}

describe("handshake", () => {
  test("same secret: both sides authenticated, each knows the other", () => {
    const result = play(pair());
    expect(result.acceptor?.result).toEqual({ kind: "authenticated", peer: "a" });
    expect(result.dialer?.result).toEqual({ kind: "authenticated", peer: "b" });
  });

  test("wrong secret: acceptor refuses with auth-fail, dialer learns why", () => {
    const result = play(pair({ dialerSecret: wrongSecret }));
    expect(result.acceptor?.result.kind).toBe("failed");
    expect(result.acceptor?.send?.type).toBe("auth-fail");
    expect(result.dialer?.result).toMatchObject({ kind: "failed" });
    expect(JSON.stringify(result.dialer?.result)).toContain("failed to prove the cluster secret");
  });

  test("unknown dialer is refused at hello", () => {
    const { acceptor } = pair({ members: [] });
    const step = acceptor.receive({ type: "hello", from: "a", to: "b" });
    expect(step.result).toEqual({ kind: "failed", reason: "a is not a member" });
  });

  test("hello for another node is refused", () => {
    const { acceptor } = pair();
    expect(acceptor.receive({ type: "hello", from: "a", to: "z" }).result.kind).toBe("failed");
  });

  test("a raft frame before authentication is refused", () => {
    const { acceptor } = pair();
    expect(acceptor.receive({ type: "raft", messages: [] }).result.kind).toBe("failed");
  });

  test("a replayed auth frame from an earlier connection is refused", () => {
    const first = pair();
    first.acceptor.receive(first.dialer.opening);
    const recorded = first.dialer.receive({ type: "challenge", nonce: nonceA }).send!;
    // A new connection has a new acceptor nonce.
    const second = new AcceptorHandshake({ selfId: "b", secret, nonce: nonceC, refuseDialer: () => null });
    second.receive({ type: "hello", from: "a", to: "b" });
    expect(second.receive(recorded).result.kind).toBe("failed");
  });

  test("an acceptor without the secret is detected by the dialer", () => {
    const { dialer } = pair();
    dialer.receive({ type: "challenge", nonce: nonceA });
    const forged = acceptorProof({ ...base, secret: wrongSecret, dialerNonce: nonceB });
    expect(dialer.receive({ type: "auth-ok", proof: forged }).result.kind).toBe("failed");
  });

  test("an acceptor replaying an old auth-ok is detected (dialer nonce is fresh)", () => {
    const { dialer } = pair();
    dialer.receive({ type: "challenge", nonce: nonceA });
    const old = acceptorProof({ ...base, dialerNonce: nonceC });
    expect(dialer.receive({ type: "auth-ok", proof: old }).result.kind).toBe("failed");
  });

  test("frames after the end are refused", () => {
    const p = pair();
    play(p);
    expect(p.acceptor.receive({ type: "hello", from: "a", to: "b" }).result.kind).toBe("failed");
    expect(p.dialer.receive({ type: "challenge", nonce: nonceA }).result.kind).toBe("failed");
  });
});
