/**
 * @module The benchmark frame: every bench/*.bench.ts default-exports a Bench, and this harness
 * runs it, prints a table with the machine it ran on, and writes bench/results/NAME.json shaped
 * `{ name, machine: { bun, cpu, cores }, metrics }` so runs can be compared over time.
 */
import { cpus } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type Metrics = Record<string, number>;

export interface Bench {
  readonly name: string;
  /** Runs the measurement and returns the issue's metric keys. Must be bounded in time. */
  run(): Promise<Metrics>;
}

export interface Machine {
  readonly bun: string;
  readonly cpu: string;
  readonly cores: number;
}

export function machine(): Machine {
  const list = cpus();
  return { bun: Bun.version, cpu: list[0]?.model.trim() ?? "unknown", cores: list.length };
}

export const resultsDir = join(import.meta.dir, "results");

export function writeResult(name: string, metrics: Metrics): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ name, machine: machine(), metrics }, null, 2) + "\n");
  return path;
}

export function printTable(name: string, metrics: Metrics): void {
  const m = machine();
  console.log(`\n${name}  (bun ${m.bun}, ${m.cpu}, ${m.cores} cores)`);
  const width = Math.max(...Object.keys(metrics).map((k) => k.length));
  for (const [key, value] of Object.entries(metrics)) {
    const shown = Number.isInteger(value) ? value.toLocaleString("en-US") : value.toFixed(3);
    console.log(`  ${key.padEnd(width)}  ${shown.padStart(16)}`);
  }
}

/** Seeded input so every run measures the same bytes (splitmix32). */
export function seededBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out[i] = (z ^ (z >>> 16)) & 0xff;
  }
  return out;
}
