/**
 * A run's own build tree, made from the warm one in a few milliseconds.
 *
 * The warm tree (a kernel's source folder and its cargo target dir, built by
 * scripts/build-kernels.ts) is never written by a run. A run gets:
 *   - a copy of the kernel's source, mtimes preserved, with the slide's files written over it
 *     (new mtime, so cargo sees exactly those files as changed);
 *   - a copy of the target dir in which every small file (fingerprints, dep-info) and rustc's
 *     incremental caches are copied with their mtimes, and every big artifact (libcore's 57 MB
 *     .rlib and .rmeta, alloc, dependencies, build scripts, and also the kernel crate's own rlib
 *     and binary) is a hard link to the warm tree's file (or a symbolic link into it: see `share`).
 *     Hard links are safe because nothing writes an artifact in place: rustc writes rlibs and
 *     rmeta files to a temporary file and renames it, ld unlinks its output before writing it,
 *     cargo removes a file before it hard-links ("uplifts") a new one, so a rebuilt artifact is a
 *     new inode (kernel.test.ts checks the warm tree after real rebuilds). Of rustc's incremental
 *     caches only the newest session is taken, its big files linked and its small ones copied
 *     (see incrementalLinkMinBytes): a crate the run does not rebuild costs nothing to copy.
 * Cargo reads the shared artifacts and compares their mtimes, finds core & co. fresh and
 * rebuilds only the edited crate.
 *
 * For the fastest rebuild, the sandbox mounts the run tree at the warm tree's own absolute path
 * (profile.mountPath, by default profile.sourceDir): rustc's incremental cache and cargo's
 * target-info cache are keyed by absolute paths. At another path a one-file rebuild still works
 * but recompiles the whole edited crate (~0.35 s instead of ~0.2 s here).
 *
 * Figures (kernels/osbe, these machines): the warm target dir holds 142 MB in ~240 files; a run
 * tree copies about 3 MB, links 153 MB and takes 35-40 ms to make.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { checkReplaceable, type KernelProfile } from "./profile";

export interface RunTreeOptions {
  profile: KernelProfile;
  /** An empty (or missing) directory that becomes the run's copy of the kernel's source folder. */
  runDir: string;
  /** Replaced files: path relative to the kernel's source folder → new content. */
  files?: Record<string, string>;
  /**
   * Where the build will see the warm target dir: on the host its real path (the default); inside
   * the sandbox the path of its read-only mount (e.g. "/warm/osbe/target"). The links point there.
   */
  warmTargetSeenAt?: string;
  /** Files at least this big are linked instead of copied (default 1 MiB). */
  linkMinBytes?: number;
  /**
   * In rustc's incremental caches, files at least this big are hard-linked too (default 64 KiB;
   * Infinity: copy them all). Safe and cheap: rustc never writes a session's file in place (it
   * deletes a file before writing it anew), and it starts a crate's next session by hard-linking
   * the previous session's files, falling back to copying each it may not link: the sandbox user
   * may not hard-link the warm tree's root-owned files (protected_hardlinks), so rustc copies
   * exactly those, and only for a crate it rebuilds. One small file per session is always copied
   * (owned by the sandbox user, so it links): rustc warns when it could link none.
   */
  incrementalLinkMinBytes?: number;
  /**
   * How big artifacts are shared. "hardlink" (default, needs the run dir on the warm tree's file
   * system; falls back to "symlink" otherwise) keeps every path the same as in the warm build,
   * so rustc's incremental cache stays valid: rustc canonicalizes the paths of the crates it
   * links, and a symbolic link into another folder changes them, which makes it recompile all of
   * the edited crate's code (~0.2 s instead of ~0.1 s here).
   * Neither lets a run change the warm tree: rustc and cargo replace outputs by renaming new
   * files over them (a new inode), and in the sandbox the shared files are read-only to the
   * sandbox user (hard links) or on a read-only mount (symbolic links).
   */
  share?: "hardlink" | "symlink";
  /**
   * Owner of everything the run may write (directories, copied and replaced files), e.g. the
   * sandbox user. Shared artifacts keep the warm tree's owner: never chown a run tree
   * recursively, that would hand the warm tree's hard-linked inodes to the sandbox user.
   */
  owner?: { uid: number; gid: number };
  /**
   * Folders of the source that hold no replaceable file (vendored crates, most of a big kernel's
   * modules, .cargo): "copy" (default) copies them like the rest; "mount" leaves an empty folder
   * in their place and lists them in `mountedDirs`, for the caller to mount the warm tree's
   * folder there read-only (the sandbox does). A run cannot change them either way, and with
   * "mount" making a run tree costs the same whether the checkout has 3 MB or 44 MB of crates.
   */
  unchangedDirs?: "copy" | "mount";
}

export interface RunTree {
  /** The run's kernel source folder (mount it at profile.mountPath in the sandbox). */
  sourceDir: string;
  targetDir: string;
  /** The image's path on the host once the build has run. */
  imagePath: string;
  copiedFiles: number;
  copiedBytes: number;
  linkedFiles: number;
  linkedBytes: number;
  /**
   * With `unchangedDirs: "mount"`: folders of the source (relative) that are left empty in the run
   * tree; mount the warm tree's folder of the same path over each, read-only.
   */
  mountedDirs: string[];
}

/** The folder of the warm tree to mount read-only over a mounted folder of a run tree. */
export function mountedDirSource(profile: KernelProfile, dir: string): string {
  return path.join(profile.sourceDir, dir);
}

/**
 * Read-only binds that complete a run tree mounted at `profile.mountPath`: its mounted folders
 * from the warm tree. They must be mounted after (over) the run tree itself.
 */
export function mountedDirBinds(profile: KernelProfile, tree: RunTree): Array<{ host: string; sandbox: string }> {
  return tree.mountedDirs.map((dir) => ({ host: mountedDirSource(profile, dir), sandbox: path.join(profile.mountPath, dir) }));
}

/**
 * Of a crate's incremental folder (`incremental/<crate>-<hash>/`), only what rustc will read: its
 * newest finished session (`s-<time>-<random>-<svh>/`, time in base 36) and that session's lock
 * file. Older sessions (rustc deletes them at its next run), unfinished ones (`…-working`) are left
 * out: a warm tree rebuilt with other flags would otherwise make every run copy them too.
 */
function latestSession<T extends { name: string; isDirectory(): boolean }>(entries: T[]): T[] {
  const session = /^s-([0-9a-z]+)-([0-9a-z]+)-([0-9a-z]+)$/;
  const finished = entries.filter((e) => e.isDirectory() && session.test(e.name) && !e.name.endsWith("-working"));
  if (finished.length === 0) return entries;
  const time = (name: string) => Number.parseInt(session.exec(name)![1]!, 36);
  const newest = finished.reduce((a, b) => (time(b.name) > time(a.name) ? b : a));
  const lock = `${newest.name.slice(0, newest.name.lastIndexOf("-"))}.lock`;
  return entries.filter((e) => e === newest || e.name === lock || !e.name.startsWith("s-"));
}

/** A copy with the original's mode (libuv's copyfile sets it) and times (cargo compares mtimes). */
async function copyPreserving(from: string, to: string, stat: { atime: Date; mtime: Date }) {
  await fs.copyFile(from, to);
  await fs.utimes(to, stat.atime, stat.mtime);
}

/** Creates the run's tree. Throws if the warm tree is missing (run scripts/build-kernels.ts). */
export async function prepareRunTree(options: RunTreeOptions): Promise<RunTree> {
  const { profile, runDir } = options;
  const warmTarget = path.join(profile.sourceDir, profile.targetDir);
  const warmTargetSeenAt = options.warmTargetSeenAt ?? warmTarget;
  const linkMinBytes = options.linkMinBytes ?? 1024 * 1024;
  const incrementalLinkMin = options.incrementalLinkMinBytes ?? 64 * 1024;
  let share = options.share ?? "hardlink";
  const tree: RunTree = {
    sourceDir: runDir,
    targetDir: path.join(runDir, profile.targetDir),
    imagePath: path.join(runDir, profile.imagePath),
    copiedFiles: 0,
    copiedBytes: 0,
    linkedFiles: 0,
    linkedBytes: 0,
    mountedDirs: [],
  };
  try {
    await fs.access(warmTarget);
  } catch {
    throw new Error(`kernel ${profile.name}: no warm build tree at ${warmTarget} (run scripts/build-kernels.ts)`);
  }
  // Check the replaced files before touching the disk.
  const replaced = Object.entries(options.files ?? {}).map(([file, content]) => [checkReplaceable(profile, file).path, content] as const);

  const own = async (p: string) => {
    if (options.owner) await fs.lchown(p, options.owner.uid, options.owner.gid);
  };
  await fs.mkdir(runDir, { recursive: true });
  await own(runDir);

  // 1. The source, without the target dir and version-control data.
  const targetDir = path.normalize(profile.targetDir);
  const skip = new Set([targetDir, ".git"]);
  // Folders a run may change something in: those holding a replaceable file or the target dir.
  const changeable = new Set<string>();
  for (const file of [...profile.replaceableFiles.map((f) => f.path), path.join(targetDir, "x")]) {
    for (let dir = path.dirname(file); dir !== "." && dir !== "/"; dir = path.dirname(dir)) changeable.add(dir);
  }
  const mount = options.unchangedDirs === "mount";
  const walkSource = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(profile.sourceDir, rel), { withFileTypes: true });
    await Promise.all(entries.map(async (entry) => {
      const relPath = path.join(rel, entry.name);
      if (skip.has(relPath)) return;
      const from = path.join(profile.sourceDir, relPath);
      const to = path.join(runDir, relPath);
      if (entry.isDirectory() && mount && !changeable.has(relPath)) {
        // A mount point, root's: the sandbox sees the warm tree's folder here, read-only.
        await fs.mkdir(to, { recursive: true });
        tree.mountedDirs.push(relPath);
      } else if (entry.isDirectory()) {
        await fs.mkdir(to, { recursive: true });
        await own(to);
        await walkSource(relPath);
      } else if (entry.isFile()) {
        const stat = await fs.stat(from);
        await copyPreserving(from, to, stat);
        await own(to);
        tree.copiedFiles++;
        tree.copiedBytes += stat.size;
      } else if (entry.isSymbolicLink()) {
        await fs.symlink(await fs.readlink(from), to);
      }
    }));
  };
  await walkSource("");

  // 2. The target dir: small files copied, big immutable artifacts linked, shared folders mounted.
  const sharedTargetDirs = new Set(profile.sharedTargetDirs.map((d) => path.normalize(d)));
  const walkTarget = async (rel: string, insideIncremental: boolean): Promise<void> => {
    const fromDir = path.join(warmTarget, rel);
    const toDir = path.join(tree.targetDir, rel);
    await fs.mkdir(toDir, { recursive: true });
    await own(toDir);
    let entries = await fs.readdir(fromDir, { withFileTypes: true });
    if (insideIncremental && path.basename(path.dirname(rel)) === "incremental") entries = latestSession(entries);
    // In a session of rustc's incremental cache, one file is always copied: see incrementalLinkMinBytes.
    let alwaysCopy: string | undefined;
    if (insideIncremental && path.basename(path.dirname(path.dirname(rel))) === "incremental") {
      const sizes = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => ({ name: e.name, size: (await fs.stat(path.join(fromDir, e.name))).size })));
      alwaysCopy = sizes.reduce<{ name: string; size: number } | undefined>((a, b) => (a && a.size <= b.size ? a : b), undefined)?.name;
    }
    await Promise.all(entries.map(async (entry) => {
      const relPath = path.join(rel, entry.name);
      const from = path.join(fromDir, entry.name);
      const to = path.join(toDir, entry.name);
      if (entry.isDirectory() && mount && sharedTargetDirs.has(relPath)) {
        // Read only by runs (the profile says): the warm tree's folder is mounted here, read-only.
        await fs.mkdir(to, { recursive: true });
        tree.mountedDirs.push(path.join(profile.targetDir, relPath));
      } else if (entry.isDirectory()) {
        await walkTarget(relPath, insideIncremental || entry.name === "incremental");
      } else if (entry.isSymbolicLink()) {
        await fs.symlink(await fs.readlink(from), to);
      } else if (entry.isFile()) {
        const stat = await fs.stat(from);
        let link = insideIncremental
          ? share === "hardlink" && stat.size >= incrementalLinkMin && entry.name !== alwaysCopy
          : stat.size >= linkMinBytes;
        if (link && share === "hardlink") {
          try {
            await fs.link(from, to);
          } catch (error) {
            // Another file system (e.g. the run dir on a tmpfs): fall back to a symbolic link
            // (incremental caches: to a copy, as rustc would hard-link the link itself).
            if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
            share = "symlink";
            if (insideIncremental) link = false;
          }
        }
        if (link) {
          if (share === "symlink") await fs.symlink(path.join(warmTargetSeenAt, relPath), to);
          tree.linkedFiles++;
          tree.linkedBytes += stat.size;
        } else {
          await copyPreserving(from, to, stat);
          await own(to);
          tree.copiedFiles++;
          tree.copiedBytes += stat.size;
        }
      }
    }));
  };
  await walkTarget("", false);

  // 3. The slide's files, with a fresh mtime: cargo rebuilds because of them and nothing else.
  for (const [file, content] of replaced) {
    const to = path.join(runDir, file);
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.rm(to, { force: true }); // never write through a link
    await fs.writeFile(to, content);
    await own(to);
  }
  tree.mountedDirs.sort();
  return tree;
}

/** Removes a run's tree; links are removed, never followed. */
export async function removeRunTree(runDir: string): Promise<void> {
  await fs.rm(runDir, { recursive: true, force: true, maxRetries: 3 });
}
