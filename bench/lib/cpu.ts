/**
 * Where the CPU went during a run, in cores (CPU seconds ÷ wall seconds; the machine has os.cpus()):
 * the server process, the PostgreSQL processes working for the bench database (its backends plus the
 * shared writer/checkpointer processes), this load generator, and everything else on the machine
 * (other work sharing the cores distorts every figure: it is reported so a noisy run can be spotted).
 * Reads /proc; on other platforms stop() returns null.
 */
import { readFileSync } from 'node:fs';
import type { Sql } from './database';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function ticksOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return null;
  }
}

/** Busy ticks of the whole machine (all cores), from the first line of /proc/stat. */
function machineBusyTicks(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return user + nice + system + irq + softirq + (steal || 0);
}

/** Backends of this database and the server-wide helper processes (WAL writer, checkpointer, …). */
export async function postgresPids(sql: Sql): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity
     WHERE datname = current_database()
        OR (datname IS NULL AND backend_type IN ('checkpointer', 'background writer', 'walwriter'))`;
  return rows.map((r) => r.pid);
}

export interface CpuShare {
  server: number;
  postgres: number;
  loadGenerator: number;
  other: number;
  wallSeconds: number;
}

export interface CpuMeter {
  stop(): Promise<CpuShare | null>;
}

export async function startCpuMeter(serverPid: number, sql: Sql): Promise<CpuMeter> {
  if (process.platform !== 'linux') return { stop: async () => null };
  const pgStart = new Map<number, number>();
  for (const pid of await postgresPids(sql)) pgStart.set(pid, ticksOf(pid) ?? 0);
  const t0 = process.hrtime.bigint();
  const self0 = process.cpuUsage();
  const server0 = ticksOf(serverPid) ?? 0;
  const machine0 = machineBusyTicks();
  return {
    async stop() {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const self = process.cpuUsage(self0);
      const server = Math.max(0, (ticksOf(serverPid) ?? server0) - server0);
      const machine = machineBusyTicks() - machine0;
      let pg = 0;
      const pids = new Set([...pgStart.keys(), ...(await postgresPids(sql))]);
      for (const pid of pids) {
        const now = ticksOf(pid);
        if (now !== null) pg += Math.max(0, now - (pgStart.get(pid) ?? 0));
      }
      const bench = ((self.user + self.system) / 1e6) * TICKS_PER_SECOND;
      const cores = (ticks: number) => ticks / TICKS_PER_SECOND / wall;
      return {
        server: cores(server),
        postgres: cores(pg),
        loadGenerator: cores(bench),
        other: Math.max(0, cores(machine - server - pg - bench)),
        wallSeconds: wall,
      };
    },
  };
}

export function describeCpu(share: CpuShare | null): string {
  if (!share) return 'n/a';
  const f = (n: number) => n.toFixed(2);
  return `server ${f(share.server)} · pg ${f(share.postgres)} · bench ${f(share.loadGenerator)} · other ${f(share.other)}`;
}
