/**
 * Quotas against abuse: each client (address) has a budget of CPU seconds over a sliding window,
 * charged with what its compiles and programs really used (CPU time, not wall time; a cached
 * compile costs nothing). A run is refused once the budget is spent, saying when it frees up.
 *
 * A client is flagged (log line, metric, listed in /api/health) when its runs keep hitting the
 * CPU limit, or when it runs far more than a student would: what crypto miners and runaway
 * solvers look like from here. A flag does not refuse anything by itself; the budget does.
 *
 * QUOTAS (JSON) overrides the defaults, e.g. QUOTAS='{"cpuSecondsPerWindow":60,"windowMinutes":10}'.
 * The defaults are generous for a lecture (a class behind one address running examples of a few
 * milliseconds each uses a few CPU seconds an hour) and tight for a script looping on the CPU limit.
 */
import { z } from "zod";
import { readJsonSettings } from "./json-settings";
import type { AbuseFlag, UsageStore, UsageWindow } from "./usage-store";

export const QuotaSettingsSchema = z
  .object({
    /** CPU seconds a client may use within the window (compile and run together). */
    cpuSecondsPerWindow: z.number().positive(),
    windowMinutes: z.number().positive(),
    /** Flag a client with this many runs stopped by the CPU limit within the window. */
    flagCpuLimitHits: z.number().int().positive(),
    /** Flag a client with more runs than this within the window. */
    flagRunsPerWindow: z.number().int().positive(),
    /** How long a flag stays listed. */
    flagKeepHours: z.number().positive(),
  })
  .strict();
export type QuotaSettings = z.infer<typeof QuotaSettingsSchema>;

export const defaultQuotaSettings: QuotaSettings = {
  cpuSecondsPerWindow: 300,
  windowMinutes: 15,
  flagCpuLimitHits: 10,
  flagRunsPerWindow: 3000,
  flagKeepHours: 24,
};

/** Defaults, then QUOTAS (JSON) from the environment. */
export function readQuotaSettings(env: Record<string, string | undefined> = process.env): QuotaSettings {
  return readJsonSettings("QUOTAS", env.QUOTAS, defaultQuotaSettings, QuotaSettingsSchema.partial());
}

export interface QuotaRefusal {
  message: string;
  retryAfterS: number;
}

export interface RunUsage {
  /** CPU milliseconds of the compile (0 when cached) and of the program. */
  cpuMs: number;
  /** The program (or its compile) was stopped by the CPU limit. */
  hitCpuLimit: boolean;
}

export interface Quotas {
  readonly settings: QuotaSettings;
  /** Before a run: why the client may not run now, or null. */
  check(client: string): Promise<QuotaRefusal | null>;
  /** After a run: charges its CPU time and counts it; returns the flag when this run raised one. */
  charge(client: string, usage: RunUsage): Promise<AbuseFlag | null>;
  /** CPU milliseconds the client used within the window. */
  cpuUsedMs(client: string): Promise<number>;
  /** Flagged clients, newest first. */
  flags(): Promise<AbuseFlag[]>;
}

export function createQuotas(store: UsageStore, settings: QuotaSettings = defaultQuotaSettings, now: () => number = Date.now): Quotas {
  const window: UsageWindow = { windowMs: settings.windowMinutes * 60_000, buckets: 30 };
  const budgetMs = settings.cpuSecondsPerWindow * 1000;
  const keepMs = settings.flagKeepHours * 3600_000;
  const windowText = `${settings.windowMinutes} min`;

  const total = (buckets: Array<[number, number]>) => buckets.reduce((sum, [, amount]) => sum + amount, 0);

  return {
    settings,
    async check(client) {
      const t = now();
      const buckets = (await store.buckets("cpu", client, window, t)).sort((a, b) => a[0] - b[0]);
      let used = total(buckets);
      if (used < budgetMs) return null;
      // The budget frees up as the oldest buckets leave the window.
      const size = window.windowMs / window.buckets;
      let freeAt = t + window.windowMs;
      for (const [start, amount] of buckets) {
        used -= amount;
        if (used < budgetMs) {
          freeAt = start + size + window.windowMs;
          break;
        }
      }
      const retryAfterS = Math.max(1, Math.ceil((freeAt - t) / 1000));
      return {
        message: `CPU quota used up: your runs used ${Math.round(total(buckets) / 1000)} CPU seconds in the last ${windowText} (at most ${settings.cpuSecondsPerWindow}); try again in ${describeSeconds(retryAfterS)}`,
        retryAfterS,
      };
    },
    async charge(client, usage) {
      const t = now();
      await Promise.all([
        usage.cpuMs > 0 ? store.add("cpu", client, usage.cpuMs, window, t) : null,
        store.add("runs", client, 1, window, t),
        usage.hitCpuLimit ? store.add("cpu-limit", client, 1, window, t) : null,
      ]);
      const [runs, hits] = await Promise.all([
        store.buckets("runs", client, window, t).then(total),
        usage.hitCpuLimit ? store.buckets("cpu-limit", client, window, t).then(total) : 0,
      ]);
      let reason: string | null = null;
      if (hits >= settings.flagCpuLimitHits) reason = `${hits} runs hit the CPU limit within ${windowText}`;
      else if (runs > settings.flagRunsPerWindow) reason = `${runs} runs within ${windowText} (more than ${settings.flagRunsPerWindow})`;
      if (!reason) return null;
      const flag: AbuseFlag = { client, reason, flaggedAt: t };
      return (await store.flag(flag, keepMs)) ? flag : null;
    },
    async cpuUsedMs(client) {
      return total(await store.buckets("cpu", client, window, now()));
    },
    flags() {
      return store.flags(now(), keepMs);
    },
  };
}

function describeSeconds(s: number): string {
  if (s < 120) return `${s} s`;
  return `${Math.ceil(s / 60)} min`;
}
