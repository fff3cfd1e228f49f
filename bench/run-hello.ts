/**
 * Hello-world compile+run through POST /api/run, beside the bare toolchain on the host, in one run.
 *
 *   npm run bench            (ROUNDS=15 by default)
 *
 * Each round's source differs by a comment, so every engine run is a compile-cache miss; a second
 * series repeats one source to show the cache-hit path. Prints medians and the ratio to bare.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createEngine } from "../sandbox";
import { createClientLimiter } from "../server/client-limits";
import { createRunApi } from "../server/run-api";

const ROUNDS = Number(process.env.ROUNDS ?? 15);

const SOURCES = {
  c: '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }\n',
  rust: 'fn main() { println!("hello"); }\n',
} as const;
type Lang = keyof typeof SOURCES;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The bare toolchain on the host: compile into a temp dir, run, as a person would at a shell. */
function bareOnce(lang: Lang, round: number): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-bare-"));
  try {
    const src = path.join(dir, lang === "c" ? "main.c" : "main.rs");
    fs.writeFileSync(src, `${SOURCES[lang]}// round ${round}\n`);
    const bin = path.join(dir, "main");
    const start = performance.now();
    if (lang === "c") execFileSync("/usr/bin/gcc", ["-O0", "-o", bin, src]);
    else execFileSync("/usr/bin/rustc", ["--edition=2021", "-o", bin, src], { cwd: dir });
    const out = spawnSync(bin, { encoding: "utf8" });
    const ms = performance.now() - start;
    if (out.stdout !== "hello\n") throw new Error(`bare ${lang} printed ${JSON.stringify(out.stdout)}`);
    return ms;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function apiOnce(url: string, lang: Lang, source: string): Promise<{ ms: number; cached: boolean }> {
  const start = performance.now();
  const res = await fetch(url, { method: "POST", body: JSON.stringify({ language: lang, code: source }) });
  const body = await res.json();
  const ms = performance.now() - start;
  if (res.status !== 200 || body.run?.stdout !== "hello\n") throw new Error(`api ${lang}: ${res.status} ${JSON.stringify(body)}`);
  return { ms, cached: body.compile.cached };
}

async function main(): Promise<void> {
  const engine = createEngine();
  const api = createRunApi(engine, createClientLimiter({ runsPerMinute: 100_000, runBurst: 100_000 }));
  const server = http.createServer((req, res) => void api(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/run`;

  console.log(`hello world, compile + run, median of ${ROUNDS} (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "cpu"})`);
  console.log("lang   bare toolchain   POST /api/run (miss)   ratio   POST /api/run (cache hit)");
  try {
    for (const lang of ["c", "rust"] as const) {
      // One warm-up of each so page cache and toolchain detection do not count.
      bareOnce(lang, -1);
      await apiOnce(url, lang, `${SOURCES[lang]}// warm-up ${Date.now()}\n`);
      const bare: number[] = [];
      const miss: number[] = [];
      const hit: number[] = [];
      const nonce = Date.now();
      for (let round = 0; round < ROUNDS; round++) {
        bare.push(bareOnce(lang, round));
        const r = await apiOnce(url, lang, `${SOURCES[lang]}// round ${nonce}-${round}\n`);
        if (r.cached) throw new Error("expected a cache miss");
        miss.push(r.ms);
        hit.push((await apiOnce(url, lang, SOURCES[lang])).ms);
      }
      const b = median(bare);
      const m = median(miss);
      console.log(
        `${lang.padEnd(6)} ${b.toFixed(1).padStart(10)} ms ${m.toFixed(1).padStart(16)} ms ${(m / b).toFixed(2).padStart(9)}x ${median(hit).toFixed(1).padStart(16)} ms`,
      );
    }
  } finally {
    await engine.shutdown();
    server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
