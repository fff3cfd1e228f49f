/**
 * NODE ONLY. A deck may read any file of its course (CONTENT_DIR), never anything outside it, and the loader
 * must know which files outside the deck's own folder it read (a shared `attributes.adoc`, snippets, a
 * docinfo folder) so that editing them reconverts and reloads every deck that uses them.
 *
 * In safe mode Asciidoctor jails every file it reads to `base_dir`, which must stay the deck's folder (the top
 * document's includes are resolved against it). So three Asciidoctor methods are wrapped, once per process,
 * and act while a conversion runs (it is synchronous, so one scope at a time):
 *   PathResolver#system_path                 the jail: the deck folder is widened to the course folder
 *   PreprocessorReader#resolve_include_path  every `include::` (the resolved file, also a missing one)
 *   Document#read_asset                       docinfo files and other assets Asciidoctor reads itself
 * The jail is lexical (`..` cannot climb out, a symlink could), so includes and assets are also checked by
 * their real path.
 * Both record the file as a dependency, and an include whose real path (symlinks resolved) leaves the course
 * folder is refused with file and line. Wrapping these two methods, rather than replacing includes with an
 * include processor, keeps every include feature (tags, lines, leveloffset, indent) Asciidoctor's own.
 */
import fs from "node:fs";
import path from "node:path";

/** What one conversion may read and what it did read. */
export interface ReadScope {
  /** The course folder and the deck's folder (Asciidoctor's base_dir), absolute. */
  contentDir: string;
  deckDir: string;
  /** Real folders reads may land in: the course folder and the deck's own folder (a deck may be a symlink). */
  realRoots: string[];
  /** Every file the conversion read or tried to read (absolute, lexical paths). */
  reads: Set<string>;
  /** Includes refused because they leave the course folder. */
  refused: { file: string; line?: number; message: string }[];
}

export function createReadScope(contentDir: string, deckDir: string): ReadScope {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return { contentDir: path.resolve(contentDir), deckDir: path.resolve(deckDir), realRoots: [...new Set([real(contentDir), real(deckDir)])], reads: new Set(), refused: [] };
}

/** Is `file` inside `dir` (or `dir` itself)? Lexical. */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** Does the file, symlinks resolved, stay within the scope's folders? A missing file is judged by its folder. */
function staysInside(scope: ReadScope, file: string): boolean {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return isInside(scope.contentDir, file);
  }
  return scope.realRoots.some((root) => isInside(root, real));
}

const URIISH = /^[a-z][a-z0-9.+-]+:\/{0,2}/i;

/**
 * The scope of the conversion running now. Process-global, like the hooks: this module may be loaded twice
 * (Next's bundle of a route and the server's own import, e.g. prewarm), and the hooks one copy installed must
 * see the scope another copy set.
 */
const SCOPE = Symbol.for("osbyexample.deck.readScope");
const scopeHolder = globalThis as { [SCOPE]?: ReadScope | null };
const currentScope = (): ReadScope | null => scopeHolder[SCOPE] ?? null;

/** Run a (synchronous) conversion with `scope` recording and guarding its reads. */
export function withReadScope<T>(scope: ReadScope, convert: () => T): T {
  const previous = currentScope();
  scopeHolder[SCOPE] = scope;
  try {
    return convert();
  } finally {
    scopeHolder[SCOPE] = previous;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: Opal classes have no TypeScript types
type OpalAny = any;
const INSTALLED = Symbol.for("osbyexample.deck.readHooks");

/** Wrap Asciidoctor's two read paths (idempotent; call after the processor exists). */
export function installReadHooks(opal: OpalAny): void {
  const g = globalThis as { [INSTALLED]?: boolean };
  if (g[INSTALLED]) return;
  const resolver = opal?.Asciidoctor?.PathResolver?.prototype;
  const reader = opal?.Asciidoctor?.PreprocessorReader?.prototype;
  const document = opal?.Asciidoctor?.Document?.prototype;
  if (!resolver?.$system_path || !reader?.$resolve_include_path || !document?.$read_asset) throw new Error("Asciidoctor.js internals changed: cannot guard include:: (course folder jail)");
  g[INSTALLED] = true;

  const systemPath = resolver.$system_path;
  resolver.$system_path = function (this: OpalAny, target: unknown, start: unknown, jail: unknown, opts: unknown) {
    const scope = currentScope();
    if (!scope || typeof jail !== "string" || path.resolve(jail) !== scope.deckDir) return systemPath.call(this, target, start, jail, opts);
    // A relative start (e.g. :docinfodir: ../shared, :imagesdir: images) stays relative to the deck folder, as
    // it would be with the deck as the jail; only the jail itself moves out to the course folder.
    const from = typeof start === "string" && start && !path.isAbsolute(start) ? path.resolve(scope.deckDir, start) : start;
    return systemPath.call(this, target, from, scope.contentDir, opts);
  };

  const resolveInclude = reader.$resolve_include_path;
  reader.$resolve_include_path = function (this: OpalAny, target: string, attrlist: unknown, attributes: unknown) {
    const scope = currentScope();
    const target_ = String(target);
    if (!scope || URIISH.test(target_)) return resolveInclude.call(this, target, attrlist, attributes);
    const dir = typeof this.dir === "string" ? this.dir : scope.contentDir;
    const wanted = path.resolve(dir, target_);
    const from = typeof this.file === "string" ? this.file : path.join(dir, "index.adoc");
    const line = typeof this.lineno === "number" ? this.lineno : undefined;
    if (!isInside(scope.contentDir, wanted) || !staysInside(scope, wanted)) {
      scope.refused.push({ file: from, line, message: `include file is outside the course folder (CONTENT_DIR): ${target_}` });
      return this.$replace_next_line(`Unresolved directive in ${path.basename(from)} - include::${target_}[]`);
    }
    const resolved = resolveInclude.call(this, target, attrlist, attributes);
    // [path, "file", relpath] when found; a missing file still counts (creating it must reconvert the deck)
    scope.reads.add(Array.isArray(resolved) && resolved[1] === "file" ? String(resolved[0]) : wanted);
    return resolved;
  };

  const readAsset = document.$read_asset;
  document.$read_asset = function (this: OpalAny, file: string, opts: unknown) {
    const scope = currentScope();
    if (scope && typeof file === "string") {
      scope.reads.add(path.resolve(file));
      if (!staysInside(scope, file)) return opal.nil;
    }
    return readAsset.call(this, file, opts);
  };
}
