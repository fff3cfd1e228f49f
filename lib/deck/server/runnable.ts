/**
 * NODE ONLY. The runnable-block extension: `[source%run,c]` / `[source%run,rust]` listings become
 * placeholders the browser mounts a CodeRunner into, and `npm run check` runs (docs/authoring.md).
 *
 *   <div class="runnable" data-runnable="{…RunnableBlock as JSON, attribute-escaped…}">
 *     <pre class="runnable-static" data-file="main.c"><code class="language-c">…visible code…</code></pre>
 *   </div>
 *
 * The static <pre> (hidden lines removed) keeps the code readable without JavaScript, in print and in
 * the scroll view. Blocks of one group (`group=NAME`, same slide) become one example with several
 * files: the placeholder stands where the group's last block stood; the earlier blocks are removed.
 * An `[.output]` block right after a runnable block is its expected output and stays rendered.
 *
 * Every mistake (unknown language, flag not allowed, bad `lines`, a group across slides, duplicate
 * ids…) is reported through `ctx.report` with file and line, so it is a deck problem like any other.
 */
import path from "node:path";
import { flagAllowed, FileNameSchema, KernelNameSchema, LanguageSchema, MAIN_FILE, type Language } from "../../protocol";
import { compileErrorNeedles, RunnableBlockSchema, splitHiddenLines, type Expectation, type RunnableBlock, type RunnableFile } from "../../runnable";
import type { DeckContext, DeckExtension } from "./extensions";

// Asciidoctor.js nodes are Opal objects; the few methods used here, typed loosely.
// biome-ignore lint/suspicious/noExplicitAny: Opal objects have no TypeScript types
type Node = any;

/** One `[source%run,…]` block as the author wrote it, before grouping. */
interface RawBlock {
  node: Node;
  slide: Node | null;
  slideId: string;
  file: string; // absolute path of the AsciiDoc file the block is in
  line: number;
  language: Language;
  fileName: string;
  source: string;
  visible: boolean;
  group?: string;
  explicitId?: string;
  attrs: Record<string, unknown>;
  /** The `[.output]` block right after it, if any. */
  output?: Node;
  /** The `[.compile-error]` block right after it, if any. */
  errors?: Node;
}

/**
 * The language of an example from its blocks' languages: one language, or C / C++ with assembly
 * files (`[source%run,c]` main.c beside `[source%run,asm,file=max.asm]` is a C run that assembles
 * max.asm). Null for any other mix.
 */
export function groupLanguage(languages: Language[]): Language | null {
  const set = new Set(languages);
  if (set.size === 1) return languages[0]!;
  set.delete("asm");
  if (set.size === 1 && (set.has("c") || set.has("cpp"))) return [...set][0]!;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Attribute parsing (exported for tests)

/** Shell-like words: whitespace separates; '…' is literal; "…" and outside quotes a backslash escapes. */
export function splitShellWords(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === "\\" && i + 1 < text.length && /["\\$`]/.test(text[i + 1])) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote === "'" ? "single" : "double"} quote`);
  if (inWord) words.push(word);
  return words;
}

/**
 * `stdin="a\nb"`: `\n`, `\t`, `\\` escapes. Each line ends with a newline, as if typed: a final newline
 * is added unless the value is empty or already ends with one.
 */
export function parseStdin(value: string): string {
  const text = value.replace(/\\(n|t|\\)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
  return text === "" || text.endsWith("\n") ? text : `${text}\n`;
}

/** The code a reader sees: hidden lines dropped (and Rust's `##` turned into `#`). */
export function visibleCode(source: string, language: Language): string {
  const { code, hiddenLines } = splitHiddenLines(source, language);
  const hidden = new Set(hiddenLines);
  return code
    .split("\n")
    .filter((_, row) => !hidden.has(row))
    .join("\n");
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[e]!);
}

// ---------------------------------------------------------------------------------------------
// Placeholder HTML

/** The placeholder for one example (see the header comment for its shape). */
export function placeholderHtml(block: RunnableBlock, htmlId?: string): string {
  const shown = block.files.filter((f) => f.visible);
  const many = shown.length > 1;
  const pres = shown
    .map((f) => {
      const code = escapeHtml(visibleCode(f.source, block.language));
      const label = many ? `<div class="runnable-file">${escapeHtml(f.name)}</div>` : "";
      return `${label}<pre class="runnable-static" data-file="${escapeHtml(f.name)}"><code class="language-${block.language}">${code}</code></pre>`;
    })
    .join("");
  const id = htmlId ? ` id="${escapeHtml(htmlId)}"` : "";
  return `<div class="runnable"${id} data-runnable="${escapeHtml(JSON.stringify(block))}">${pres}</div>`;
}

const PLACEHOLDER_RE = /<div class="runnable"(?: id="[^"]*")? data-runnable="([^"]*)">/g;

/** The runnable blocks of converted slides, in document order (what the placeholders carry). */
export function runnableBlocksFromHtml(html: string): RunnableBlock[] {
  return [...html.matchAll(PLACEHOLDER_RE)].map((m) => RunnableBlockSchema.parse(JSON.parse(unescapeHtml(m[1]))));
}

// ---------------------------------------------------------------------------------------------
// The tree processor

/** Settings of a runnable block: ours, and Asciidoctor's own for a source block. */
const KNOWN_ATTRIBUTES = new Set([
  ...["flags", "args", "stdin", "lines", "file", "group", "exit", "expect-error", "kernel"],
  ...["id", "role", "title", "reftext", "caption", "style", "language", "linenums", "indent", "tabsize", "subs", "start", "options", "opts"],
]);
const KNOWN_OPTIONS = new Set(["run", "readonly", "hidden", "compile-error", "linenums", "nowrap"]);

/** Attribute and option names on a runnable block that mean nothing here (most likely typos). */
export function unknownSettings(attributes: Record<string, unknown>): string[] {
  const unknown: string[] = [];
  for (const key of Object.keys(attributes)) {
    if (key.startsWith("$") || /^\d+$/.test(key)) continue;
    const option = /^(.*)-option$/.exec(key);
    if (option) {
      if (!KNOWN_OPTIONS.has(option[1])) unknown.push(`%${option[1]}`);
    } else if (!KNOWN_ATTRIBUTES.has(key)) unknown.push(`${key}=`);
  }
  return unknown;
}

function slideOf(node: Node): Node | null {
  for (let p = node.getParent(); p && p.getContext() !== "document"; p = p.getParent()) {
    if (p.getContext() === "section") return p;
  }
  return null;
}

function attr(node: Node, name: string): string | undefined {
  const v = node.getAttribute(name);
  return v === undefined || v === null ? undefined : String(v);
}

function isOutputBlock(node: Node | undefined, role = "output"): boolean {
  if (!node) return false;
  const context = node.getContext();
  return (context === "literal" || context === "listing") && node.hasRole(role) && !node.isOption("run");
}

/** Process a converted-but-not-rendered document: replace runnable listings with placeholders. */
export function processRunnableBlocks(doc: Node, ctx: DeckContext, createPass: (parent: Node, html: string) => Node): RunnableBlock[] {
  const indexFile = path.join(ctx.dir, "index.adoc");
  const rel = (file: string) => path.relative(path.dirname(ctx.dir), file) || file;
  const report = (file: string, line: number | undefined, message: string) =>
    ctx.report({ severity: "error", file, message, ...(line ? { line } : {}) });

  const raws: RawBlock[] = [];
  const listings: Node[] = doc.findBy({ context: "listing" }, (b: Node) => b.getStyle() === "source" && b.isOption("run"));
  for (const node of listings) {
    const loc = node.getSourceLocation?.();
    const file = (loc?.getFile?.()) ? path.resolve(ctx.dir, String(loc.getFile())) : indexFile;
    const line: number = (loc?.getLineNumber?.()) || 0;
    const lang = LanguageSchema.safeParse(attr(node, "language"));
    if (!lang.success) {
      report(
        file,
        line,
        `runnable block: language must be c, cpp, asm or rust, not ${attr(node, "language") ?? "(none)"}: [source%run,c], [source%run,cpp], [source%run,asm] or [source%run,rust]`,
      );
      continue;
    }
    const language = lang.data;
    const fileName = attr(node, "file") ?? MAIN_FILE[language];
    const nameCheck = FileNameSchema.safeParse(fileName);
    if (!nameCheck.success) {
      report(file, line, `runnable block: file=${fileName}: ${nameCheck.error.issues[0]?.message}`);
      continue;
    }
    const slide = slideOf(node);
    const siblings: Node[] = node.getParent().getBlocks();
    const next = siblings[siblings.indexOf(node) + 1];
    for (const unknown of unknownSettings(node.getAttributes())) {
      ctx.report({ severity: "warning", file, line, message: `runnable block: unknown setting ${unknown} (see docs/authoring.md)` });
    }
    const explicitId = node.getId();
    raws.push({
      node,
      slide,
      slideId: slide ? String(slide.getId() ?? "").replace(/^_+/, "") || "slide" : "title",
      file,
      line,
      language,
      fileName,
      source: String(node.getSource()),
      visible: !node.isOption("hidden"),
      group: attr(node, "group"),
      explicitId: explicitId ? String(explicitId) : undefined,
      attrs: node.getAttributes(),
      output: isOutputBlock(next) ? next : undefined,
      errors: isOutputBlock(next, "compile-error") ? next : undefined,
    });
  }

  // Grouping: a group is keyed by name; all its blocks must be on one slide.
  const examples: RawBlock[][] = [];
  const groups = new Map<string, RawBlock[]>();
  for (const raw of raws) {
    if (!raw.group) {
      examples.push([raw]);
      continue;
    }
    const members = groups.get(raw.group);
    if (!members) {
      const fresh = [raw];
      groups.set(raw.group, fresh);
      examples.push(fresh);
    } else if (members[0].slide !== raw.slide) {
      report(raw.file, raw.line, `runnable block: group "${raw.group}" spans slides (its first block is at ${rel(members[0].file)}:${members[0].line}); a group's blocks must be on one slide`);
      examples.push([{ ...raw, group: undefined }]);
    } else members.push(raw);
  }

  const blocks: RunnableBlock[] = [];
  const usedIds = new Map<string, RawBlock>();
  const perSlide = new Map<Node, number>();
  for (const members of examples) {
    const last = members[members.length - 1];
    const problem = (message: string, at: RawBlock = last) => report(at.file, at.line, `runnable block: ${message}`);

    const language = groupLanguage(members.map((m) => m.language));
    if (!language) {
      const languages = new Set(members.map((m) => m.language));
      problem(`group "${last.group}" mixes languages (${[...languages].join(", ")}); only C or C++ with assembly mix`);
      continue;
    }

    // One setting per example: the first block that sets it wins; a different value elsewhere is a mistake.
    const setting = (name: string): { value: string; at: RawBlock } | undefined => {
      let found: { value: string; at: RawBlock } | undefined;
      for (const m of members) {
        const v = m.attrs[name];
        if (v === undefined || v === null) continue;
        const value = String(v);
        if (!found) found = { value, at: m };
        else if (found.value !== value) problem(`group "${last.group}" sets ${name} twice, differently ("${found.value}" and "${value}")`, m);
      }
      return found;
    };
    const option = (name: string) => members.some((m) => m.node.isOption(name));

    const flags: string[] = [];
    const flagSetting = setting("flags");
    if (flagSetting) {
      for (const flag of flagSetting.value.split(/\s+/).filter(Boolean)) {
        if (flagAllowed(language, flag)) flags.push(flag);
        else problem(`flag not allowed for ${language}: ${flag}`, flagSetting.at);
      }
    }
    let args: string[] = [];
    const argSetting = setting("args");
    if (argSetting) {
      try {
        args = splitShellWords(argSetting.value);
      } catch (err) {
        problem(`args: ${(err as Error).message}`, argSetting.at);
      }
    }
    const stdinSetting = setting("stdin");
    const linesSetting = setting("lines");
    let lines: number | undefined;
    if (linesSetting) {
      if (/^\s*\d+\s*$/.test(linesSetting.value) && Number(linesSetting.value) > 0) lines = Number(linesSetting.value);
      else problem(`lines must be a positive whole number, not "${linesSetting.value}"`, linesSetting.at);
    }

    let exit: number | string | undefined;
    const exitSetting = setting("exit");
    if (exitSetting) {
      const v = exitSetting.value.trim();
      if (/^\d+$/.test(v) && Number(v) <= 255) exit = Number(v);
      else if (/^SIG[A-Z0-9]+$/.test(v)) exit = v;
      else problem(`exit must be an exit code (0-255) or a signal name such as SIGSEGV, not "${exitSetting.value}"`, exitSetting.at);
    }

    let expected: Expectation | undefined;
    const errorSetting = setting("expect-error");
    if (option("compile-error")) {
      const errors = last.errors ? compileErrorNeedles(String(last.errors.getSource())) : [];
      if (last.errors && errors.length === 0) problem("the [.compile-error] block lists no error (lines like `error[E0382]: …` or `error: …`)");
      expected = { kind: "compile-error", ...(errorSetting ? { text: errorSetting.value } : {}), ...(errors.length ? { errors } : {}) };
    } else if (errorSetting) problem(`expect-error needs the option %compile-error ([source%run%compile-error,${language}])`, errorSetting.at);
    else if (last.errors) problem(`a [.compile-error] block follows, but the block lacks the option %compile-error`);
    else if (last.output) {
      const pattern = last.output.isOption("pattern");
      expected = { kind: pattern ? "pattern" : "exact", text: String(last.output.getSource()) };
      // For the theme: a pattern is not literally what the program prints ({{NUM}}, …).
      if (pattern) last.output.addRole("output-pattern");
    }
    for (const m of members.slice(0, -1)) {
      if (m.output) problem(`an [.output] block belongs after the last block of group "${m.group}"`, m);
    }

    const files: RunnableFile[] = [];
    for (const m of members) {
      if (files.some((f) => f.name === m.fileName)) {
        problem(`group "${m.group}" has two files named ${m.fileName} (set file=… on the blocks)`, m);
        continue;
      }
      files.push({ name: m.fileName, source: m.source, visible: m.visible });
    }
    const visible = files.filter((f) => f.visible);
    if (visible.length === 0) problem(`every file of the example is %hidden`);
    // The kernel lab: the files replace lesson files of a kernel; the server knows which it accepts.
    let kernel: string | undefined;
    const kernelSetting = setting("kernel");
    if (kernelSetting) {
      const name = KernelNameSchema.safeParse(kernelSetting.value);
      if (!name.success) problem(`kernel=${kernelSetting.value}: ${name.error.issues[0]?.message}`, kernelSetting.at);
      else kernel = name.data;
      if (language !== "rust") problem(`a kernel example is Rust: [source%run,rust,kernel=${kernelSetting.value},file=src/…]`, kernelSetting.at);
      for (const m of members) {
        if (m.attrs.file === undefined) problem(`a kernel example names the kernel file it replaces: file=src/…`, m);
      }
      for (const name of ["flags", "args", "stdin", "exit"]) {
        const s = setting(name);
        if (s) problem(`${name}= does not apply to a kernel example (the kernel's own build and QEMU run it)`, s.at);
      }
    }
    if (language === "rust" && !kernelSetting && !files.some((f) => f.name === MAIN_FILE.rust)) problem(`a Rust example needs a file main.rs (the crate root)`);
    const mainFile = (visible.find((f) => f.name === MAIN_FILE[language]) ?? visible.at(-1) ?? files.at(-1)!).name;

    // Id: the explicit one (any block of the group), else slide id + position on the slide (or group name).
    const explicit = members.find((m) => m.explicitId)?.explicitId;
    let id = explicit;
    if (!id) {
      const n = (perSlide.get(last.slide) ?? 0) + 1;
      perSlide.set(last.slide, n);
      id = last.group ? `${last.slideId}-${last.group}` : `${last.slideId}-run-${n}`;
    }
    const clash = usedIds.get(id);
    if (clash) {
      problem(`duplicate runnable id "${id}" (also at ${rel(clash.file)}:${clash.line}); give one of them id=…`);
      let k = 2;
      while (usedIds.has(`${id}-${k}`)) k++;
      id = `${id}-${k}`;
    }
    usedIds.set(id, last);

    const block = RunnableBlockSchema.parse({
      id,
      language,
      mainFile,
      files,
      flags,
      args,
      ...(stdinSetting ? { stdin: parseStdin(stdinSetting.value) } : {}),
      ...(expected ? { expected } : {}),
      ...(lines ? { lines } : {}),
      ...(exit !== undefined && exit !== 0 ? { exit } : {}),
      readOnly: option("readonly"),
      ...(kernel ? { kernel } : {}),
      source: { file: rel(last.file), line: last.line },
    });
    blocks.push(block);

    // Replace: the last block becomes the placeholder, the earlier ones of the group go away.
    for (const m of members.slice(0, -1)) {
      const siblings: Node[] = m.node.getParent().getBlocks();
      const at = siblings.indexOf(m.node);
      if (at >= 0) siblings.splice(at, 1);
    }
    const parent = last.node.getParent();
    const siblings: Node[] = parent.getBlocks();
    const title = members.map((m) => m.node.getTitle()).find((t: unknown) => Boolean(t));
    let html = placeholderHtml(block, explicit);
    if (title) html = `<div class="listingblock runnable-block"><div class="title">${String(title)}</div>${html}</div>`;
    const replacement = createPass(parent, html);
    siblings[siblings.indexOf(last.node)] = replacement;
  }
  return blocks;
}

/** The extension for `deckExtensions`. `onBlocks` (tests, tools) receives each conversion's blocks. */
export function runnableExtension(onBlocks?: (blocks: RunnableBlock[]) => void): DeckExtension {
  return {
    name: "runnable-blocks",
    register(registry, ctx) {
      registry.treeProcessor(function (this: Node) {
        this.process((doc: Node) => {
          const blocks = processRunnableBlocks(doc, ctx, (parent, html) => this.createPassBlock(parent, html, {}));
          onBlocks?.(blocks);
          return doc;
        });
      });
    },
  };
}
