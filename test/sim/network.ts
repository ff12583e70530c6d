/**
 * @module The packet simulator (TigerBeetle `packet_simulator.zig`): decides each message's fate
 * from the seed. A message may be lost, duplicated, or delayed by a random amount (which reorders
 * it against its neighbours); links can be cut in one direction or both. A cut is checked when the
 * message is sent and again when it would arrive, so a partition also swallows packets in flight.
 */
import { assert } from "../../server/assert.ts";
import type { Message, NodeId } from "../../server/raft/types.ts";
import type { SimRng } from "./prng.ts";
import type { NetworkProfile } from "./scenario.ts";

export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  cut: number;
  duplicated: number;
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

export class Network {
  private readonly blocked = new Set<string>();
  private profile: NetworkProfile;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, cut: 0, duplicated: 0 };

  constructor(
    profile: NetworkProfile,
    private readonly rng: SimRng,
  ) {
    assert(profile.delayMin >= 1 && profile.delayMin <= profile.delayMax, "delay range must be positive");
    this.profile = profile;
  }

  /**
   * Arrival times for one sent message: none (lost or cut), one, or two (duplicated). `null` means
   * the link is cut: unlike a silent loss, the sender's transport notices (a refused connection).
   */
  send(message: Message, now: number): number[] | null {
    this.stats.sent += 1;
    if (this.isCut(message.from, message.to)) {
      this.stats.cut += 1;
      return null;
    }
    if (this.rng.chance(this.profile.lossProbability)) {
      this.stats.lost += 1;
      return [];
    }
    const arrivals = [now + this.delay()];
    if (this.rng.chance(this.profile.duplicateProbability)) {
      this.stats.duplicated += 1;
      arrivals.push(now + this.delay());
    }
    return arrivals;
  }

  /** Called when a message is due: false if its link was cut while it was in flight. */
  arrive(message: Message): boolean {
    if (this.isCut(message.from, message.to)) {
      this.stats.cut += 1;
      return false;
    }
    this.stats.delivered += 1;
    return true;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(linkKey(from, to));
  }

  cut(from: NodeId, to: NodeId): void {
    assert(from !== to, "a node is never cut from itself");
    this.blocked.add(linkKey(from, to));
  }

  /** Symmetric partition: no traffic between the two sides, either way. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cut(a, b);
        this.cut(b, a);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /**
   * Liveness phase: a healed, lossless network whose delays stay random (so ordering still is) but
   * below `delayMax`: Raft needs broadcast time ≪ election timeout to elect anyone (Raft §5.6).
   */
  quiet(delayMax: number): void {
    this.heal();
    const max = Math.max(this.profile.delayMin, Math.min(this.profile.delayMax, delayMax));
    this.profile = { ...this.profile, delayMax: max, lossProbability: 0, duplicateProbability: 0 };
  }

  cutLinkCount(): number {
    return this.blocked.size;
  }

  private delay(): number {
    return this.rng.range(this.profile.delayMin, this.profile.delayMax);
  }
}
