/**
 * What the server notes about every run, whichever door it came through (WebSocket or HTTP):
 * admission against the client's run rate and CPU quota, then, from the run's own events,
 * the metrics, the CPU charged to the client's quota, abuse flags, and one JSON log line
 * when it ends. The engine knows nothing of clients; this is where a run gets one.
 */
import type { RunEvent, RunRequest } from "../lib/protocol";
import type { EventSink } from "../sandbox/api";
import type { ClientLimiter } from "./client-limits";
import { createLogger, type Logger } from "./log";
import { createMetrics, type Metrics, type RunOutcome } from "./metrics";
import { createQuotas, type Quotas } from "./quotas";
import { createUsageStore } from "./usage-store";

export interface RunRefusal {
  reason: "rate" | "quota" | "going";
  message: string;
  retryAfterS: number;
}

/**
 * A run let in holds a place among its client's runs going until `release` (call it when the
 * run has ended, or when it is not started after all); a refused one says why.
 */
export type Admission = { refusal: RunRefusal; release?: undefined } | { refusal: null; release: () => void };

export interface RunAccounting {
  /**
   * Run rate, CPU quota, then the client's runs going at once: why this run may not start, or its
   * place. A refusal is counted and logged.
   */
  admit(client: string, request: RunRequest, via: "ws" | "http"): Promise<Admission>;
  /** Wraps the run's event sink; notes the run when its final event passes. */
  observe(client: string, request: RunRequest, via: "ws" | "http", sink: EventSink): EventSink;
  /** Counts and logs a refused connection. */
  connectionRefused(client: string, message: string): void;
  /** Flagged clients for the operator (health). */
  flags: Quotas["flags"];
}

export function createRunAccounting(deps: {
  limiter: ClientLimiter;
  quotas: Quotas;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
}): RunAccounting {
  const { limiter, quotas, metrics, log } = deps;
  const now = deps.now ?? Date.now;

  const languageOf = (request: RunRequest) => request.language;

  return {
    async admit(client, request, via) {
      const language = languageOf(request);
      let refusal: RunRefusal | null = null;
      let release = () => {};
      try {
        const rate = await limiter.takeRun(client);
        if (rate) {
          const wait = /try again in (\d+) s/.exec(rate);
          refusal = { reason: "rate", message: rate, retryAfterS: wait ? Number(wait[1]) : 60 };
        } else {
          const quota = await quotas.check(client);
          if (quota) refusal = { reason: "quota", ...quota };
          else {
            const place = await limiter.takeRunPlace(client);
            if ("refusal" in place) refusal = { reason: "going", message: place.refusal, retryAfterS: 5 };
            else release = place.release;
          }
        }
      } catch (err) {
        // The store (Redis) is away: a lecture goes on unmetered rather than stopping; the
        // sandbox's own limits still bound every run. Said loudly, so an operator sees it.
        metrics.storeErrors.inc();
        log.error({ event: "store-error", client, err: (err as Error).message }, "client limits unavailable; run admitted unchecked");
        return { refusal: null, release };
      }
      if (refusal) {
        metrics.runs.inc({ language, outcome: `refused-${refusal.reason}` });
        metrics.quotaRefusals.inc({ reason: refusal.reason });
        log.info({ event: "refusal", client, via, language, reason: refusal.reason, retryAfterS: refusal.retryAfterS }, refusal.message);
        return { refusal };
      }
      return { refusal: null, release };
    },

    observe(client, request, via, sink) {
      const language = languageOf(request);
      const startedAt = now();
      let slotAt: number | null = null;
      let compile: Extract<RunEvent, { type: "compiled" }> | null = null;
      return (event) => {
        // The first sign of work after any queue position means the run got its slot.
        if (slotAt === null && event.type !== "queued") {
          slotAt = now();
          if (event.type === "compiling" || event.type === "running") metrics.queueWait.observe((slotAt - startedAt) / 1000);
        }
        if (event.type === "compiled") {
          compile = event;
          metrics.cache.inc({ result: event.cached ? "hit" : "miss" });
          if (!event.cached) metrics.compileDuration.observe({ language }, event.timeMs / 1000);
        }
        if (event.type === "exit" && event.phase === "run") metrics.runDuration.observe({ language }, event.wallMs / 1000);
        sink(event);
        if (event.type === "exit" || event.type === "error") {
          void finish(event, compile).catch((err) => log.error({ err, client }, "run accounting failed"));
        }
      };

      async function finish(last: Extract<RunEvent, { type: "exit" | "error" }>, compiled: typeof compile): Promise<void> {
        const outcome = outcomeOf(last);
        metrics.runs.inc({ language, outcome });
        if (request.language === "kernel") metrics.kernelRuns.inc({ kernel: request.kernel, outcome });
        // CPU time, not wall time: the compiler's (none when cached) plus the program's.
        const compileCpuMs = compiled?.cpuMs ?? 0;
        const runCpuMs = last.type === "exit" && last.phase === "run" ? last.cpuMs : 0;
        const cpuMs = compileCpuMs + runCpuMs;
        if (cpuMs > 0) metrics.cpuSeconds.inc({ language }, cpuMs / 1000);
        const hitCpuLimit = (last.type === "exit" && last.limit === "cpu") || compiled?.limit === "cpu";
        const flag = await quotas.charge(client, { cpuMs, hitCpuLimit });
        log.info(
          {
            event: "run",
            client,
            via,
            language,
            ...(request.language === "kernel" ? { kernel: request.kernel } : {}),
            outcome,
            queueMs: slotAt === null ? null : slotAt - startedAt,
            compileMs: compiled && !compiled.cached ? compiled.timeMs : 0,
            cached: compiled?.cached ?? null,
            runMs: last.type === "exit" && last.phase === "run" ? last.wallMs : 0,
            cpuMs,
            limit: last.type === "exit" ? last.limit : null,
            totalMs: now() - startedAt,
          },
          "run ended",
        );
        if (flag) {
          metrics.abuseFlags.inc();
          log.warn({ event: "abuse-flag", client, reason: flag.reason }, `client flagged: ${flag.reason}`);
        }
      }
    },

    connectionRefused(client, message) {
      metrics.quotaRefusals.inc({ reason: "connections" });
      log.info({ event: "refusal", client, via: "ws", reason: "connections" }, message);
    },

    flags: () => quotas.flags(),
  };
}

/** Accounting for a server without Redis or settings of its own (tests): in memory, quiet. */
export function defaultRunAccounting(limiter: ClientLimiter): RunAccounting {
  return createRunAccounting({
    limiter,
    quotas: createQuotas(createUsageStore(null)),
    metrics: createMetrics(),
    log: createLogger({ LOG_LEVEL: "silent" }),
  });
}

export function outcomeOf(last: Extract<RunEvent, { type: "exit" | "error" }>): RunOutcome {
  if (last.type === "error") {
    switch (last.code) {
      case "busy":
        return "busy";
      case "invalid":
        return "invalid";
      case "killed":
        return "killed";
      case "connection-lost":
        return "connection-lost";
      case "restarting":
        return "restarting";
      default:
        return "internal-error";
    }
  }
  if (last.limit) return `limit-${last.limit}`;
  if (last.phase === "compile") return "compile-error";
  return last.exitCode === 0 ? "ok" : "exit-nonzero";
}
