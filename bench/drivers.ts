/**
 * The two sandbox drivers side by side: hello world in C and Rust through the engine, bubblewrap
 * against Docker containers (prepared ahead by the pool), beside the bare toolchain, in one run.
 *
 *   npm run bench            (this is its last part; ROUNDS=15 by default)
 *   tsx bench/drivers.ts
 *
 * Each round's source differs by a comment (a compile-cache miss: compile + run, two sandboxes);
 * a second series repeats one source (a hit: the run's sandbox only). The Docker Engine is the
 * tests' own (started here when none answers, stopped afterwards; the image is built once).
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RunRequestSchema, type RunEvent } from "../lib/protocol";
import { createEngine, type Engine } from "../sandbox";
import { DockerDriver, defaultDockerOptions } from "../sandbox/drivers/docker";
import { startTestDocker } from "../test/sandbox/docker-daemon";

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const SOURCES = {
  c: '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }\n',
  rust: 'fn main() { println!("hello"); }\n',
} as const;
type Lang = keyof typeof SOURCES;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

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

async function runOnce(engine: Engine, lang: Lang, source: string): Promise<{ ms: number; cached: boolean }> {
  const events: RunEvent[] = [];
  const start = performance.now();
  const request = RunRequestSchema.parse({ language: lang, files: [{ name: lang === "c" ? "main.c" : "main.rs", content: source }], stdin: "" });
  let exitAt = 0;
  const handle = engine.run(request, (e) => {
    events.push(e);
    if (e.type === "exit" || e.type === "error") exitAt = performance.now();
  });
  await handle.done;
  const stdout = events.map((e) => (e.type === "stdout" ? e.data : "")).join("");
  if (stdout !== "hello\n") throw new Error(`${lang}: ${JSON.stringify(events).slice(0, 600)}`);
  const compiled = events.find((e) => e.type === "compiled");
  // The answer is the final event; removing the sandboxes happens after it.
  return { ms: exitAt - start, cached: compiled?.type === "compiled" && compiled.cached };
}

async function measure(engine: Engine, lang: Lang): Promise<{ miss: number; hit: number }> {
  await runOnce(engine, lang, `${SOURCES[lang]}// warm-up ${Date.now()}\n`);
  await runOnce(engine, lang, SOURCES[lang]);
  const miss: number[] = [];
  const hit: number[] = [];
  const nonce = `${Date.now()}-${Math.random()}`;
  for (let round = 0; round < ROUNDS; round++) {
    const r = await runOnce(engine, lang, `${SOURCES[lang]}// round ${nonce}-${round}\n`);
    if (r.cached) throw new Error("expected a cache miss");
    miss.push(r.ms);
    hit.push((await runOnce(engine, lang, SOURCES[lang])).ms);
  }
  return { miss: median(miss), hit: median(hit) };
}

async function main(): Promise<void> {
  const docker = await startTestDocker();
  const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), "bench-drivers-"));
  const engines = {
    bwrap: createEngine({ cacheDir: path.join(cacheRoot, "bwrap"), concurrency: 2 }),
    docker: createEngine({
      driver: new DockerDriver({ ...defaultDockerOptions(), docker: docker.docker, image: docker.image }),
      cacheDir: path.join(cacheRoot, "docker"),
      concurrency: 2,
    }),
  };
  try {
    for (const [name, engine] of Object.entries(engines)) {
      const health = await engine.health();
      if (!health.ready) throw new Error(`${name} engine not ready: ${JSON.stringify(health)}`);
    }
    console.log(`\nsandbox drivers, hello world through the engine (final event), median of ${ROUNDS}, ${os.cpus().length} cores`);
    console.log("lang   bare toolchain   bwrap miss   docker miss   docker/bwrap   bwrap hit   docker hit   docker/bwrap");
    for (const lang of ["c", "rust"] as const) {
      bareOnce(lang, -1);
      const bare = median(Array.from({ length: ROUNDS }, (_, round) => bareOnce(lang, round)));
      const b = await measure(engines.bwrap, lang);
      const d = await measure(engines.docker, lang);
      const ms = (v: number, width: number) => `${v.toFixed(1)} ms`.padStart(width);
      console.log(
        `${lang.padEnd(6)} ${ms(bare, 14)} ${ms(b.miss, 12)} ${ms(d.miss, 13)} ${`${(d.miss / b.miss).toFixed(2)}x`.padStart(14)} ${ms(b.hit, 11)} ${ms(d.hit, 12)} ${`${(d.hit / b.hit).toFixed(2)}x`.padStart(14)}`,
      );
    }
  } finally {
    await Promise.all(Object.values(engines).map((e) => e.shutdown()));
    await docker.stop();
    fs.rmSync(cacheRoot, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
