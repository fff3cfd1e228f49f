/**
 * Prometheus metrics (prom-client), served at GET /metrics. One registry per server; the
 * run accounting (run-accounting.ts) feeds the run counters, the engine's health the gauges.
 * deploy/grafana/osbyexample.json is the dashboard over these names.
 */
import type http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Engine } from "../sandbox/api";

export type Metrics = ReturnType<typeof createMetrics>;

/** Which outcome a finished (or refused) run is counted under. */
export type RunOutcome =
  | "ok"
  | "exit-nonzero"
  | "compile-error"
  | `limit-${string}`
  | "killed"
  | "restarting"
  | "connection-lost"
  | "busy"
  | "refused-rate"
  | "refused-quota"
  | "refused-going"
  | "invalid"
  | "internal-error";

const durationBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(engine: Engine | null = null) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const runs = new Counter({
    name: "osbe_runs_total",
    help: "Runs by language and outcome (ok, exit-nonzero, compile-error, limit-<name>, killed, refused-*, busy, …)",
    labelNames: ["language", "outcome"] as const,
    registers: [registry],
  });
  const kernelRuns = new Counter({
    name: "osbe_kernel_runs_total",
    help: "Kernel-lab runs by kernel and outcome",
    labelNames: ["kernel", "outcome"] as const,
    registers: [registry],
  });
  const compileDuration = new Histogram({
    name: "osbe_compile_duration_seconds",
    help: "Wall time of compiles that were not served from the cache",
    labelNames: ["language"] as const,
    buckets: durationBuckets,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: "osbe_run_duration_seconds",
    help: "Wall time of the program's run phase",
    labelNames: ["language"] as const,
    buckets: durationBuckets,
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: "osbe_queue_wait_seconds",
    help: "Time from a run's request until it got a sandbox slot",
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const cache = new Counter({
    name: "osbe_compile_cache_total",
    help: "Compile cache lookups by result (hit, miss)",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const cpuSeconds = new Counter({
    name: "osbe_cpu_seconds_total",
    help: "CPU seconds charged to clients' quotas (compile and run)",
    labelNames: ["language"] as const,
    registers: [registry],
  });
  const quotaRefusals = new Counter({
    name: "osbe_quota_refusals_total",
    help: "Runs and connections refused by a per-client bound, by reason (rate, quota, going, connections)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: "osbe_store_errors_total",
    help: "Client limit checks that failed because the store (Redis) did not answer; the request was let through",
    registers: [registry],
  });
  const abuseFlags = new Counter({
    name: "osbe_abuse_flags_total",
    help: "Clients flagged for unusual use",
    registers: [registry],
  });
  const wsConnections = new Gauge({
    name: "osbe_websocket_connections",
    help: "Open WebSocket connections on this replica",
    registers: [registry],
  });
  const draining = new Gauge({
    name: "osbe_draining",
    help: "1 while this replica drains (SIGTERM received), else 0",
    registers: [registry],
  });
  const queueLength = new Gauge({ name: "osbe_queue_length", help: "Runs waiting for a sandbox slot", registers: [registry] });
  const sandboxesBusy = new Gauge({ name: "osbe_sandboxes_busy", help: "Sandbox slots in use", registers: [registry] });
  const sandboxesMax = new Gauge({ name: "osbe_sandboxes_max", help: "Sandbox slots of this replica", registers: [registry] });

  return {
    registry,
    runs,
    kernelRuns,
    compileDuration,
    runDuration,
    queueWait,
    cache,
    cpuSeconds,
    quotaRefusals,
    abuseFlags,
    storeErrors,
    wsConnections,
    draining,
    /** Serves GET /metrics. */
    async handle(_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
      if (engine) {
        // The engine's gauges are read when scraped, so they are never stale.
        const health = await engine.health().catch(() => null);
        if (health) {
          queueLength.set(health.queued);
          sandboxesBusy.set(health.running);
          sandboxesMax.set(health.maxConcurrent);
        }
      }
      const text = await registry.metrics();
      res.writeHead(200, { "Content-Type": registry.contentType, "Cache-Control": "no-store" });
      res.end(text);
    },
  };
}
