/**
 * Structured logs (pino): one JSON line per event an operator asks about later ("who used the
 * CPU last night"): each run's end, each refusal, each abuse flag, drain steps.
 * LOG_LEVEL sets the level (default info; "silent" turns it off).
 */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(
  env: Record<string, string | undefined> = process.env,
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level: env.LOG_LEVEL ?? "info",
    base: { pid: process.pid, replica: env.REPLICA_NAME ?? env.HOSTNAME ?? undefined },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The process's logger. */
export const log: Logger = createLogger();
