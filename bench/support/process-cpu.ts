/**
 * @module CPU time of whole processes (all threads, user + system) from /proc, so a benchmark can
 * say where the machine's cores went: the nodes, the OMi simulator, the load generator. On Linux
 * /proc reports it in USER_HZ ticks, which are 1/100 s on every architecture the kernel exposes.
 */
import { readFileSync } from "node:fs";

const msPerTick = 10;

/** CPU milliseconds `pid` has used so far. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * msPerTick;
}

/** Cores each named process used on average from the call until `stop()`. */
export function cpuMeter(pids: Readonly<Record<string, number>>): { stop(): Record<string, number> } {
  const startedMs = performance.now();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuMs(pid)]));
  return {
    stop: () => {
      const wallMs = performance.now() - startedMs;
      return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, (processCpuMs(pid) - before[name]!) / wallMs]));
    },
  };
}
