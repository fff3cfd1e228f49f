/**
 * Mixed C + NASM and Rust + rand, compile + run through POST /api/run, beside the bare toolchain on
 * the host (nasm + gcc + run; rustc with the same prebuilt crates + run), interleaved round by round.
 *
 *   npm run bench            (ROUNDS=15 by default; after bench/run.ts)
 *   npx tsx bench/languages.ts
 *
 * Every round's source differs by a comment, so each engine run is a compile-cache miss. Prints
 * medians, the ratio engine / bare, and for reference the bare toolchain with the link options the
 * engine adds (Rust: -C strip=debuginfo), which is where the engine's Rust saving comes from.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readCratesManifest } from "../sandbox/toolchains/rust-crates";
import { startBenchServer } from "./server-process";

const ROUNDS = Number(process.env.ROUNDS ?? 15);

const MAIN_C = `#include <stdio.h>\nlong maximum(long a, long b);\nint main(void) { printf("%ld\\n", maximum(3, 7)); return 0; }\n`;
const MAXIMUM_ASM = `global maximum\nsection .text\nmaximum:\n    mov rax, rdi\n    cmp rax, rsi\n    cmovl rax, rsi\n    ret\n`;
const RAND_RS = `use rand::Rng;\nfn main() { let n: u32 = rand::thread_rng().gen_range(7..8); println!("{n}"); }\n`;

type Case = "c+nasm" | "rust+rand";
const files = (which: Case, round: string) =>
  which === "c+nasm"
    ? [
        { name: "main.c", content: `${MAIN_C}// ${round}\n` },
        { name: "maximum.asm", content: `${MAXIMUM_ASM}; ${round}\n` },
      ]
    : [{ name: "main.rs", content: `${RAND_RS}// ${round}\n` }];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The bare toolchain on the host, as a person would type it at a shell. */
/** engineFlags: the link options the engine adds for speed (Rust: no debug info of std in the binary), for comparison. */
function bareOnce(which: Case, round: string, engineFlags = false): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-bare-"));
  try {
    for (const f of files(which, round)) fs.writeFileSync(path.join(dir, f.name), f.content);
    const bin = path.join(dir, "main");
    const start = performance.now();
    if (which === "c+nasm") {
      execFileSync("/usr/bin/nasm", ["-f", "elf64", "-o", "maximum.o", "maximum.asm"], { cwd: dir });
      execFileSync("/usr/bin/gcc", ["-no-pie", ...(engineFlags ? ["-Wl,-z,noexecstack"] : []), "-o", bin, "main.c", "maximum.o"], { cwd: dir, stdio: "pipe" });
    } else {
      const crates = readCratesManifest();
      const rand = crates?.crates.find((c) => c.name === "rand");
      if (!crates || !rand) throw new Error("the Rust crates are not built: npx tsx scripts/build-crates.ts");
      const args = ["--edition=2021", "-C", "linker=gcc", "-L", `dependency=${crates.depsDir}`, "--extern", `rand=${path.join(crates.depsDir, rand.rlib)}`];
      if (engineFlags) args.push("-C", "strip=debuginfo");
      execFileSync("/usr/bin/rustc", [...args, "-o", bin, "main.rs"], { cwd: dir });
    }
    const out = spawnSync(bin, { encoding: "utf8" });
    const ms = performance.now() - start;
    if (out.stdout !== "7\n") throw new Error(`bare ${which} printed ${JSON.stringify(out.stdout)}`);
    return ms;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function apiOnce(url: string, which: Case, round: string): Promise<number> {
  const language = which === "c+nasm" ? "c" : "rust";
  const start = performance.now();
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ language, files: files(which, round) }) });
  const body = await res.json();
  const ms = performance.now() - start;
  if (res.status !== 200 || body.run?.stdout !== "7\n" || body.compile.cached) throw new Error(`api ${which}: ${res.status} ${JSON.stringify(body)}`);
  return ms;
}

async function main(): Promise<void> {
  // The server in its own process: the bare runs below block this process's event loop.
  const { base, child } = await startBenchServer();
  const url = `http://${base}/api/run`;

  console.log(`mixed languages, compile + run, median of ${ROUNDS} (${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)})`);
  console.log("case        bare toolchain   POST /api/run (miss)   ratio   bare with the engine's link flags");
  try {
    for (const which of ["c+nasm", "rust+rand"] as const) {
      const nonce = `${Date.now()}`;
      bareOnce(which, `warm-up ${nonce}`);
      await apiOnce(url, which, `warm-up ${nonce}`);
      const bare: number[] = [];
      const bareEngineFlags: number[] = [];
      const api: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        bare.push(bareOnce(which, `${nonce}-${round}`));
        bareEngineFlags.push(bareOnce(which, `${nonce}-${round}-f`, true));
        api.push(await apiOnce(url, which, `${nonce}-${round}`));
      }
      const b = median(bare);
      const a = median(api);
      console.log(
        `${which.padEnd(10)} ${b.toFixed(1).padStart(10)} ms ${a.toFixed(1).padStart(16)} ms ${(a / b).toFixed(2).padStart(9)}x ${median(bareEngineFlags).toFixed(1).padStart(16)} ms`,
      );
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
