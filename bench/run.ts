/**
 * `npm run bench`: what a run costs, and what a lecture hall gets. Prints a table and writes JSON
 * (bench/results/bench-<time>.json and bench/results/latest.json).
 *
 *   (1) C and Rust hello world, a unique source each round (every run compiles), through
 *       POST /api/run and through /ws, beside the bare toolchain in the same loop: median, p95, ratio
 *   (2) the same source again (a cache hit): server time (Server-Timing) and round trip
 *   (3) lecture hall: 200 WebSocket clients from 200 addresses run the same example at once:
 *       served / refused, p50 / p95 / max from Run to exit, number of compiles
 *   (4) the same hall, each client with its own edit of the example
 *   (5) the server's memory (RSS) before and at its peak during (3) and (4)
 *
 * The server runs in its own process (bench/server.ts), with the defaults of `npm start`.
 * ROUNDS (default 15), HALL (default 200), BENCH_PORT (default: any free port).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { startBenchServer } from "./server-process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const HALL = Number(process.env.HALL ?? 200);

const SOURCES = {
  c: '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }\n',
  rust: 'fn main() { println!("hello"); }\n',
} as const;
type Lang = keyof typeof SOURCES;

interface Stats {
  n: number;
  median: number;
  p95: number;
  max: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
  const mid = s.length >> 1;
  const median = s.length === 0 ? Number.NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, p95: at(0.95), max: s.at(-1) ?? Number.NaN };
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : "–");
const sec = (v: number) => (Number.isFinite(v) ? `${(v / 1000).toFixed(2)} s` : "–");

/** The bare toolchain on the host: compile into a temp dir, run, as a person would at a shell. */
function bareOnce(lang: Lang, tag: string): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-bare-"));
  try {
    const src = path.join(dir, lang === "c" ? "main.c" : "main.rs");
    fs.writeFileSync(src, `${SOURCES[lang]}// ${tag}\n`);
    const bin = path.join(dir, "main");
    const start = performance.now();
    if (lang === "c") execFileSync("/usr/bin/gcc", ["-O0", "-o", bin, src]);
    else execFileSync("/usr/bin/rustc", ["--edition=2021", "-o", bin, src], { cwd: dir });
    const out = spawnSync(bin, { encoding: "utf8" });
    const elapsed = performance.now() - start;
    if (out.stdout !== "hello\n") throw new Error(`bare ${lang} printed ${JSON.stringify(out.stdout)}`);
    return elapsed;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let addressCounter = 0;
/** A fresh client address for each request: the bench is many students, not one client hitting its run budget. */
const nextAddress = () => {
  const n = ++addressCounter;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

async function apiOnce(base: string, lang: Lang, source: string): Promise<{ ms: number; serverMs: number; cached: boolean }> {
  const start = performance.now();
  const res = await fetch(`http://${base}/api/run`, {
    method: "POST",
    headers: { "X-Forwarded-For": nextAddress(), "Content-Type": "application/json" },
    body: JSON.stringify({ language: lang, code: source }),
  });
  const body = await res.json();
  const elapsed = performance.now() - start;
  if (res.status !== 200 || body.run?.stdout !== "hello\n") throw new Error(`api ${lang}: ${res.status} ${JSON.stringify(body)}`);
  const serverMs = Number(/dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "")?.[1] ?? Number.NaN);
  return { ms: elapsed, serverMs, cached: body.compile.cached };
}

/** One open WebSocket that runs requests one after another. */
async function wsClient(base: string, address: string) {
  const ws = new WebSocket(`ws://${base}/ws`, { headers: { "X-Forwarded-For": address } });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let counter = 0;
  const listeners = new Map<string, (m: { type: string; [k: string]: unknown }) => void>();
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (typeof m.id === "string") listeners.get(m.id)?.(m);
  });
  return {
    ws,
    /** Runs `source`; resolves at the final event with what happened. */
    run(lang: Lang, source: string, sentAt = performance.now()) {
      const id = `r${++counter}`;
      return new Promise<{ ms: number; ok: boolean; refused: boolean; compiled: boolean; stdout: string; error?: string }>((resolve) => {
        let stdout = "";
        let compiled = false;
        listeners.set(id, (m) => {
          if (m.type === "stdout") stdout += m.data as string;
          if (m.type === "compiled") compiled = !(m.cached as boolean);
          if (m.type === "exit" || m.type === "error") {
            listeners.delete(id);
            resolve({
              ms: performance.now() - sentAt,
              ok: m.type === "exit" && m.exitCode === 0,
              refused: m.type === "error" && m.code === "busy",
              compiled,
              stdout,
              ...(m.type === "error" ? { error: String(m.message) } : {}),
            });
          }
        });
        ws.send(JSON.stringify({ type: "run", id, language: lang, files: [{ name: lang === "c" ? "main.c" : "main.rs", content: source }] }));
      });
    },
    close: () => ws.close(),
  };
}

function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Samples the server's RSS every 50 ms while `work` runs; returns the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = rssKiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 50);
  try {
    const result = await work();
    return { result, peakMiB: Math.max(peak, rssKiB(pid)) / 1024 };
  } finally {
    clearInterval(timer);
  }
}

/** HALL clients from HALL addresses, connected first, then all press Run in the same moment. */
async function hall(base: string, source: (i: number) => string) {
  const clients = await Promise.all(Array.from({ length: HALL }, (_, i) => wsClient(base, `10.200.${i >> 8}.${i & 255}`)));
  const sentAt = performance.now();
  const results = await Promise.all(clients.map((c, i) => c.run("c", source(i), sentAt)));
  for (const c of clients) c.close();
  const served = results.filter((r) => r.ok && r.stdout === "hello\n");
  return {
    clients: HALL,
    served: served.length,
    refused: results.filter((r) => r.refused).length,
    failed: results.filter((r) => !r.ok && !r.refused).map((r) => r.error ?? "wrong output").slice(0, 3),
    compiles: results.filter((r) => r.compiled).length,
    latency: stats(served.map((r) => r.ms)),
  };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const { base, child } = await startBenchServer();
  const results: Record<string, unknown> = {};
  try {
    const machine = `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "cpu"}`;
    console.log(`npm run bench — ${machine}; load average at start ${loadBefore.map((l) => l.toFixed(1)).join(" ")}`);

    // (1) and (2)
    const ws = await wsClient(base, "10.100.0.1");
    const single: Record<string, unknown> = {};
    console.log(`\n(1) hello world, compile + run, unique source each round (${ROUNDS} rounds); (2) the same source again`);
    console.log("lang   bare median/p95        POST /api/run median/p95 (ratio)   /ws median/p95 (ratio)          cache hit: server / round trip");
    for (const lang of ["c", "rust"] as const) {
      bareOnce(lang, "warm-up");
      await apiOnce(base, lang, `${SOURCES[lang]}// warm-up ${Date.now()}\n`);
      const bare: number[] = [];
      const api: number[] = [];
      const overWs: number[] = [];
      const hitServer: number[] = [];
      const hitTrip: number[] = [];
      const nonce = `${Date.now()}-${Math.random()}`;
      for (let round = 0; round < ROUNDS; round++) {
        bare.push(bareOnce(lang, `${nonce}-${round}`));
        // HTTP and /ws take turns going first: the one right after another run meets the slot
        // whose sandboxes are being removed and replaced, which should not count against one door.
        const viaApi = async () => {
          const a = await apiOnce(base, lang, `${SOURCES[lang]}// api ${nonce}-${round}\n`);
          if (a.cached) throw new Error("expected a cache miss");
          api.push(a.ms);
        };
        const viaWs = async () => {
          const w = await ws.run(lang, `${SOURCES[lang]}// ws ${nonce}-${round}\n`);
          if (!w.ok || !w.compiled) throw new Error(`ws ${lang}: ${JSON.stringify(w)}`);
          overWs.push(w.ms);
        };
        for (const door of round % 2 === 0 ? [viaApi, viaWs] : [viaWs, viaApi]) await door();
        const h = await apiOnce(base, lang, SOURCES[lang]);
        if (round > 0 && !h.cached) throw new Error("expected a cache hit");
        hitServer.push(h.serverMs);
        hitTrip.push(h.ms);
      }
      const [b, a, w, hs, ht] = [stats(bare), stats(api), stats(overWs), stats(hitServer), stats(hitTrip)];
      single[lang] = { bare: b, api: a, ws: w, ratioApi: a.median / b.median, ratioWs: w.median / b.median, cacheHitServer: hs, cacheHitRoundTrip: ht };
      console.log(
        `${lang.padEnd(6)} ${`${ms(b.median)} / ${ms(b.p95)}`.padEnd(22)} ${`${ms(a.median)} / ${ms(a.p95)} (${(a.median / b.median).toFixed(2)}×)`.padEnd(34)} ${`${ms(w.median)} / ${ms(w.p95)} (${(w.median / b.median).toFixed(2)}×)`.padEnd(31)} ${ms(hs.median)} / ${ms(ht.median)}`,
      );
    }
    ws.close();
    results.single = single;

    // (3), (4), (5)
    const rssBefore = rssKiB(child.pid!) / 1024;
    const slide = `${SOURCES.c}// the slide's example ${Date.now()}\n`; // one source, not yet compiled
    const same = await peakRss(child.pid!, () => hall(base, () => slide));
    const edits = await peakRss(child.pid!, () => hall(base, (i) => `${SOURCES.c}// student ${i}'s edit ${Date.now()}\n`));
    results.hallSameExample = { ...same.result, peakRssMiB: same.peakMiB };
    results.hallOwnEdits = { ...edits.result, peakRssMiB: edits.peakMiB };
    results.rssBeforeMiB = rssBefore;
    console.log(`\n(3)–(5) lecture hall: ${HALL} WebSocket clients from ${HALL} addresses press Run at once`);
    console.log("example          served   refused   compiles   p50        p95        max        server RSS peak");
    for (const [name, r] of [["same example", same], ["own edits", edits]] as const) {
      const h = r.result;
      console.log(
        `${name.padEnd(16)} ${`${h.served}/${h.clients}`.padEnd(8)} ${String(h.refused).padEnd(9)} ${String(h.compiles).padEnd(10)} ${sec(h.latency.median).padEnd(10)} ${sec(h.latency.p95).padEnd(10)} ${sec(h.latency.max).padEnd(10)} ${r.peakMiB.toFixed(0)} MiB (before: ${rssBefore.toFixed(0)} MiB)`,
      );
      if (h.failed.length) console.log(`   failures: ${h.failed.join(" | ")}`);
    }
    const health = await (await fetch(`http://${base}/api/health`)).json();
    results.sandboxStarts = health.sandboxStarts;
    console.log(`sandboxes started from prepared ones: ${health.sandboxStarts?.prepared}, fresh (none ready): ${health.sandboxStarts?.fresh}`);
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  const loadAfter = os.loadavg();
  console.log(`load average at end ${loadAfter.map((l) => l.toFixed(1)).join(" ")}`);
  const record = {
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, loadAverageStart: loadBefore, loadAverageEnd: loadAfter },
    rounds: ROUNDS,
    hallClients: HALL,
    ...results,
  };
  const dir = path.join(import.meta.dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${record.date.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, "latest.json"), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`written: ${path.relative(process.cwd(), file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
