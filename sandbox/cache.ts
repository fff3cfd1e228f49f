/**
 * Content-addressed compile cache: the key is a hash of the toolchain and its version, the compiler
 * flags and every file (name and content), so the same code with the same settings compiles once.
 * An entry is a folder <cacheDir>/<key>/ holding the binary `main` and `meta.json` (the compiler's
 * diagnostics, which a cache hit shows again). Only successful compiles are kept.
 *
 * Bounded: when the entries together exceed maxBytes, the least recently used go first (a hit
 * touches the entry; the order is rebuilt from mtimes at start). An entry a running program uses
 * is never evicted under it.
 *
 * The binary is run in a fresh sandbox on every hit; the cache only saves the compile.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Diagnostic, ProgramRunRequest as RunRequest, Toolchain } from "../lib/protocol";

export interface CachedCompile {
  items: Diagnostic[];
  rendered: string;
  stdout: string;
  stderr: string;
  /** How long the original compile took. */
  timeMs: number;
}

interface Entry {
  bytes: number;
  lastUsed: number;
  inUse: number;
  /** The compile output, kept in memory when small (a hit then reads no file). */
  meta?: CachedCompile;
  /** When the binary's mtime (the order of eviction after a restart) was last set. */
  touched: number;
}

/** Compile outputs up to this size (as JSON) are kept in memory with their entry. */
const MAX_MEMORY_META_CHARS = 16 * 1024;
/** A hit sets the binary's mtime at most this often: it only orders eviction after a restart. */
const TOUCH_INTERVAL_MS = 60_000;

export class CompileCache {
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;
  /** Stores under way, by key: the same example compiled by several students at once is stored once. */
  private readonly storing = new Map<string, Promise<boolean>>();

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** Creates the folder (world-traversable, so the sandbox user can bind a binary) and reads what is there. */
  async open(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o711 });
    await fsp.chmod(this.dir, 0o711);
    for (const name of await fsp.readdir(this.dir)) {
      const entryDir = path.join(this.dir, name);
      if (!/^[0-9a-f]{64}$/.test(name)) {
        if (name.startsWith("incoming-")) await fsp.rm(entryDir, { recursive: true, force: true });
        continue;
      }
      try {
        const binary = await fsp.stat(path.join(entryDir, "main"));
        await fsp.stat(path.join(entryDir, "meta.json"));
        this.remember(name, binary.size, binary.mtimeMs);
      } catch {
        await fsp.rm(entryDir, { recursive: true, force: true });
      }
    }
    await this.evict();
  }

  /** `toolchain.image`: the container image it compiles in, when a container driver is used. */
  static key(request: RunRequest, toolchain: Toolchain & { image?: string }, compileArgs: string[]): string {
    const hash = createHash("sha256");
    const files = [...request.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    hash.update(JSON.stringify({ language: request.language, toolchain, compileArgs, files: files.map((f) => [f.name, f.content]) }));
    return hash.digest("hex");
  }

  binaryPath(key: string): string {
    return path.join(this.dir, key, "main");
  }

  /** Whether a compile is stored under `key` (without taking a hold of it). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * A cached compile, marked in use until release(); null on a miss. A hit of a recent entry
   * reads nothing from disk: the compile output is in memory and the binary's presence is one stat.
   */
  async acquire(key: string): Promise<CachedCompile | null> {
    const entry = this.entries.get(key);
    if (!entry) return null;
    try {
      let meta = entry.meta;
      if (!meta) {
        const text = await fsp.readFile(path.join(this.dir, key, "meta.json"), "utf8");
        meta = JSON.parse(text) as CachedCompile;
        if (text.length <= MAX_MEMORY_META_CHARS && this.entries.get(key) === entry) entry.meta = meta;
      }
      if (!fs.existsSync(this.binaryPath(key))) throw new Error("binary missing");
      entry.inUse++;
      entry.lastUsed = Date.now();
      if (entry.lastUsed - entry.touched > TOUCH_INTERVAL_MS) {
        entry.touched = entry.lastUsed;
        const now = new Date();
        void fsp.utimes(this.binaryPath(key), now, now).catch(() => undefined);
      }
      return meta;
    } catch {
      this.forget(key);
      await fsp.rm(path.join(this.dir, key), { recursive: true, force: true });
      return null;
    }
  }

  release(key: string): void {
    const entry = this.entries.get(key);
    if (entry && entry.inUse > 0) entry.inUse--;
  }

  /** A place for the compile sandbox to deliver a binary to, before put(). */
  incomingPath(key: string, unique: string): string {
    return path.join(this.dir, `incoming-${key.slice(0, 16)}-${unique}`);
  }

  /** Stores a binary (moved from `incoming`) with its compile output; returns whether it was kept. */
  async put(key: string, incoming: string, meta: CachedCompile): Promise<boolean> {
    // Runs of the same code finish compiling at nearly the same moment; one store at a time per
    // key, and a later one finds the entry already there.
    for (let pending = this.storing.get(key); pending; pending = this.storing.get(key)) await pending;
    if (this.entries.has(key)) {
      await fsp.rm(incoming, { force: true });
      return true;
    }
    const storing = this.store(key, incoming, meta);
    this.storing.set(key, storing);
    try {
      return await storing;
    } finally {
      this.storing.delete(key);
    }
  }

  /**
   * Synchronous file steps (mkdir, renames, a small JSON file, a stat): they sit between a
   * compile's end and its program's start, and each takes microseconds where an awaited one
   * waits its turn in the thread pool.
   */
  private async store(key: string, incoming: string, meta: CachedCompile): Promise<boolean> {
    const entryDir = path.join(this.dir, key);
    const staging = `${incoming}.entry`;
    try {
      fs.mkdirSync(staging, { mode: 0o711 });
      fs.renameSync(incoming, path.join(staging, "main"));
      fs.chmodSync(path.join(staging, "main"), 0o555);
      const text = JSON.stringify(meta);
      fs.writeFileSync(path.join(staging, "meta.json"), text);
      const size = fs.statSync(path.join(staging, "main")).size;
      if (fs.existsSync(entryDir)) await fsp.rm(entryDir, { recursive: true, force: true });
      fs.renameSync(staging, entryDir);
      this.remember(key, size, Date.now(), text.length <= MAX_MEMORY_META_CHARS ? meta : undefined);
      // Never the entry just stored: the run that compiled it takes its hold right after this.
      await this.evict(key);
      return true;
    } catch {
      await fsp.rm(staging, { recursive: true, force: true });
      await fsp.rm(incoming, { force: true });
      return false;
    }
  }

  async discard(incoming: string): Promise<void> {
    await fsp.rm(incoming, { force: true });
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.totalBytes };
  }

  private remember(key: string, bytes: number, lastUsed: number, meta?: CachedCompile): void {
    this.forget(key);
    this.entries.set(key, { bytes, lastUsed, inUse: 0, touched: lastUsed, ...(meta ? { meta } : {}) });
    this.totalBytes += bytes;
  }

  private forget(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.totalBytes -= entry.bytes;
    this.entries.delete(key);
  }

  private async evict(keep?: string): Promise<void> {
    if (this.totalBytes <= this.maxBytes) return;
    const oldestFirst = [...this.entries.entries()].filter(([k, e]) => e.inUse === 0 && k !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key] of oldestFirst) {
      if (this.totalBytes <= this.maxBytes) break;
      this.forget(key);
      await fsp.rm(path.join(this.dir, key), { recursive: true, force: true });
    }
  }
}
