/**
 * The wire between browser and server, and the contract of the sandbox engine.
 *
 * Every message in both directions is defined here once, as a zod schema; TypeScript types are
 * inferred from the schemas, so browser, server and sandbox cannot disagree about a field.
 * This module must stay importable in the browser: zod only, no Node modules.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------------
// Limits a request may ask for. The engine clamps each to the operator's maxima
// (see sandbox/limits.ts for the documented defaults).

export const MAX_SOURCE_BYTES = 256 * 1024;
export const MAX_FILES = 32;
export const MAX_STDIN_BYTES = 1024 * 1024;
export const MAX_ARGS = 64;

export const LimitOverridesSchema = z
  .object({
    memoryMiB: z.number().int().positive(),
    cpuSeconds: z.number().positive(),
    wallSeconds: z.number().positive(),
    processes: z.number().int().positive(),
    outputBytes: z.number().int().positive(),
  })
  .partial()
  .strict();
export type LimitOverrides = z.infer<typeof LimitOverridesSchema>;

/** Which limit stopped a run, if any. */
export const LimitNameSchema = z.enum([
  "memory",
  "cpu",
  "wall",
  "processes",
  "output",
  "file-size",
  "disk",
]);
export type LimitName = z.infer<typeof LimitNameSchema>;

// ---------------------------------------------------------------------------------------------
// Run requests

/**
 * A file name relative to the workspace: may contain subfolders (Rust modules), never an absolute
 * path, `..`, empty segments or control characters.
 */
export const FileNameSchema = z
  .string()
  .min(1, "file name is empty")
  .max(255, "file name is longer than 255 characters")
  .refine((n) => !n.startsWith("/"), "file name must be relative, not absolute")
  .refine((n) => !n.split("/").some((s) => s === ".." || s === "." || s === ""), {
    message: "file name must not contain '..', '.' or empty path segments",
  })
  // eslint-disable-next-line no-control-regex
  .refine((n) => !/[\u0000-\u001f\\]/.test(n), "file name contains a control character or backslash");

export const SourceFileSchema = z.object({
  name: FileNameSchema,
  content: z.string(),
});
export type SourceFile = z.infer<typeof SourceFileSchema>;

/**
 * c: gcc; cpp: g++; asm: x86-64 assembly in NASM syntax (nasm -f elf64), linked by gcc; rust: rustc
 * with the curated crates. C, C++ and assembly runs may mix files: .asm (NASM), .s/.S (GNU as) and
 * .c/.cpp are all built and linked into one program.
 */
export const LanguageSchema = z.enum(["c", "cpp", "asm", "rust"]);
export type Language = z.infer<typeof LanguageSchema>;

/** Compiler flags each language accepts; anything else is refused with a message naming it. */
export const C_FLAGS: readonly RegExp[] = [
  /^-O[0-3s]$/,
  /^-std=(c|gnu)(89|90|99|11|17|18|2x|23)$/,
  /^-W(all|extra|pedantic|error)$/,
  /^-pedantic$/,
  /^-pthread$/,
  /^-lm$/,
  /^-g$/,
];
export const CPP_FLAGS: readonly RegExp[] = [
  /^-O[0-3s]$/,
  /^-std=(c|gnu)\+\+(11|14|17|20|23|2a|2b)$/,
  /^-W(all|extra|pedantic|error)$/,
  /^-pedantic$/,
  /^-pthread$/,
  /^-lm$/,
  /^-g$/,
];
/** Assembly: debug info, the (implied) output format, and what the C files linked with it may use. */
export const ASM_FLAGS: readonly RegExp[] = [/^-g$/, /^-felf64$/, /^-O[0-3s]$/, /^-pthread$/, /^-lm$/];
export const RUST_FLAGS: readonly RegExp[] = [/^--edition=(2015|2018|2021|2024)$/, /^--(debug|release)$/];

const FLAGS: Record<Language, readonly RegExp[]> = { c: C_FLAGS, cpp: CPP_FLAGS, asm: ASM_FLAGS, rust: RUST_FLAGS };

export function flagAllowed(language: Language, flag: string): boolean {
  // Assembly mixed into a C or C++ run: nasm's implied format flag is harmless there too.
  if (flag === "-felf64" && (language === "c" || language === "cpp")) return true;
  return FLAGS[language].some((re) => re.test(flag));
}

const RunRequestFields = {
  language: LanguageSchema,
  files: z.array(SourceFileSchema).min(1, "no files").max(MAX_FILES, `more than ${MAX_FILES} files`),
  flags: z.array(z.string().max(64)).max(32).default([]),
  args: z.array(z.string().max(4096)).max(MAX_ARGS).default([]),
  /** Given all at once before the program starts; interactive input uses stdin messages. */
  stdin: z.string().max(MAX_STDIN_BYTES).optional(),
  limits: LimitOverridesSchema.optional(),
};

/** Checks that need the whole request: flags against the language, duplicate names, total size. */
function checkRunRequest(req: { language: Language; files: SourceFile[]; flags: string[] }, ctx: z.RefinementCtx): void {
  for (const flag of req.flags) {
    if (!flagAllowed(req.language, flag)) {
      ctx.addIssue({ code: "custom", path: ["flags"], message: `flag not allowed for ${req.language}: ${flag}` });
    }
  }
  checkFiles(req.files, ctx);
}

/** Duplicate names and the total size, for programs and kernels alike. */
function checkFiles(files: SourceFile[], ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  let bytes = 0;
  for (const f of files) {
    if (names.has(f.name)) ctx.addIssue({ code: "custom", path: ["files"], message: `duplicate file name: ${f.name}` });
    names.add(f.name);
    bytes += utf8Length(f.content);
  }
  if (bytes > MAX_SOURCE_BYTES) {
    ctx.addIssue({ code: "custom", path: ["files"], params: { tooLarge: true }, message: `source is larger than ${MAX_SOURCE_BYTES / 1024} KiB` });
  }
}

/** A C, C++, assembly or Rust program: compiled, then run. */
export const ProgramRunRequestSchema = z.object(RunRequestFields).strict().superRefine(checkRunRequest);
export type ProgramRunRequest = z.infer<typeof ProgramRunRequestSchema>;
export type ProgramRunRequestInput = z.input<typeof ProgramRunRequestSchema>;

// Kernel runs (the kernel lab): `{language: "kernel", kernel: "osbe", files: [{name: "src/hello.rs", content}]}`.
// The files replace lesson files of the named kernel profile; which files a profile lets a slide
// replace is known only to the server (sandbox/kernels/profile.ts), which answers any other file
// with an `invalid` error naming the allowed ones. No files at all boots the kernel unchanged.

export const KERNEL_LANGUAGE = "kernel" as const;
/** The `exit` message of a kernel run whose kernel reported success through isa-debug-exit. */
export const KERNEL_SUCCESS_MESSAGE = "kernel exited: success";
export const MAX_KERNEL_FILES = 8;
export const KernelNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, "kernel must be a kernel profile's name (lower-case letters, digits, '-'), e.g. \"osbe\"");

const KernelRunRequestFields = {
  language: z.literal(KERNEL_LANGUAGE),
  /** The kernel profile's name, e.g. "osbe". */
  kernel: KernelNameSchema,
  /** Replaced files, relative to the kernel's source folder (e.g. "src/scheduler.rs"). */
  files: z.array(SourceFileSchema).max(MAX_KERNEL_FILES, `more than ${MAX_KERNEL_FILES} files`).default([]),
  /** Adjusts the boot (QEMU) limits, e.g. a short wallSeconds; clamped like a program's. */
  limits: LimitOverridesSchema.optional(),
};

function checkKernelRequest(req: { files: SourceFile[] }, ctx: z.RefinementCtx): void {
  checkFiles(req.files, ctx);
}

export const KernelRunRequestSchema = z.object(KernelRunRequestFields).strict().superRefine(checkKernelRequest);
export type KernelRunRequest = z.infer<typeof KernelRunRequestSchema>;
export type KernelRunRequestInput = z.input<typeof KernelRunRequestSchema>;

const LANGUAGE_ERROR = { error: `language must be one of "c", "cpp", "asm", "rust" or "${KERNEL_LANGUAGE}"` };

/** Any run: a program (language c, cpp, asm or rust) or a kernel (language "kernel"). */
export const RunRequestSchema = z.discriminatedUnion("language", [ProgramRunRequestSchema, KernelRunRequestSchema], LANGUAGE_ERROR);
export type RunRequest = z.infer<typeof RunRequestSchema>;
export type RunRequestInput = z.input<typeof RunRequestSchema>;

export function isKernelRequest(request: RunRequest): request is KernelRunRequest {
  return request.language === KERNEL_LANGUAGE;
}

// ---------------------------------------------------------------------------------------------
// Events of one run, in order:
//   queued* → compiling → diagnostics? → compiled → running → (stdout|stderr|stats)* → exit
// or, at any point, a single `error`. Exactly one `exit` or `error` ends every run.

export const DiagnosticSchema = z.object({
  file: z.string(),
  /** 1-based; 0 when only the file is known (a linker message without debug information). */
  line: z.number().int(),
  column: z.number().int(),
  endLine: z.number().int().optional(),
  endColumn: z.number().int().optional(),
  severity: z.enum(["error", "warning", "note", "help"]),
  code: z.string().optional(),
  message: z.string(),
});
export type Diagnostic = z.infer<typeof DiagnosticSchema>;

export const ToolchainSchema = z.object({ name: z.string(), version: z.string() });
export type Toolchain = z.infer<typeof ToolchainSchema>;

export const RunEventSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("queued"),
    /** 1 = next to start; sent again while the run waits, whenever it or the estimate moves. */
    position: z.number().int().nonnegative(),
    /** The estimated wait until the run starts, from what is running and waiting ahead of it. */
    estimatedWaitMs: z.number().int().nonnegative().optional(),
  }),
  z.object({ type: z.literal("compiling"), toolchain: ToolchainSchema }),
  z.object({
    type: z.literal("diagnostics"),
    items: z.array(DiagnosticSchema),
    /** The compiler's human-readable text, with the user's file names. */
    rendered: z.string(),
  }),
  z.object({
    type: z.literal("compiled"),
    ok: z.boolean(),
    exitCode: z.number().int().nullable(),
    timeMs: z.number(),
    /** CPU time the compiler used (0 when cached): what the client's CPU quota is charged. */
    cpuMs: z.number(),
    cached: z.boolean(),
    /** Compiler output that is not a diagnostic (rare: linker messages and the like). */
    stdout: z.string(),
    stderr: z.string(),
    /** Set when the compiler itself hit a limit. */
    limit: LimitNameSchema.nullable(),
  }),
  z.object({ type: z.literal("running") }),
  z.object({ type: z.literal("stdout"), data: z.string() }),
  z.object({ type: z.literal("stderr"), data: z.string() }),
  z.object({ type: z.literal("stats"), cpuMs: z.number(), memoryBytes: z.number() }),
  z.object({
    type: z.literal("exit"),
    /** Which phase ended the run: "compile" when compilation failed and nothing ran. */
    phase: z.enum(["compile", "run"]),
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    wallMs: z.number(),
    cpuMs: z.number(),
    peakMemoryBytes: z.number(),
    limit: LimitNameSchema.nullable(),
    truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
    /** The outcome in words, e.g. "killed: memory limit of 256 MiB exceeded". */
    message: z.string(),
  }),
  z.object({
    type: z.literal("error"),
    /**
     * busy: refused (the estimated wait is over the server's bound, or the queue's memory is full);
     * replaced: a newer run from the same client took this waiting run's place;
     * restarting: the server drains for a restart; the page runs it again on another replica once.
     */
    code: z.enum(["busy", "invalid", "internal", "connection-lost", "killed", "restarting", "replaced"]),
    message: z.string(),
    /** With busy: when trying again is worth it (the estimated wait, or when a client's run budget refills). */
    retryAfterSeconds: z.number().int().positive().optional(),
  }),
]);
export type RunEvent = z.infer<typeof RunEventSchema>;
export type RunEventType = RunEvent["type"];

// ---------------------------------------------------------------------------------------------
// WebSocket messages

export const MAX_WS_MESSAGE_BYTES = 512 * 1024;

/**
 * Close codes the server ends /ws connections with; the close reason says the rest in words.
 * A refused connection is accepted and closed at once with `refused`, because a browser page
 * cannot read the status of a refused upgrade (a 429 looks like any network failure to it).
 */
export const WS_CLOSE = {
  /** Over a per-client bound (too many connections from one address); try again later. */
  refused: 4429,
  /** The server is stopping or restarting; reconnect. */
  shuttingDown: 1001,
  /** The client read its output too slowly. */
  slowReader: 1008,
} as const;
export const RunIdSchema = z.string().min(1).max(64);

// ---------------------------------------------------------------------------------------------
// Live lecture (server/live): on the same socket as runs. Anyone may join a deck's session and
// say whether they follow; only a signed-in lecturer's connection may change it (the server checks
// every control message against the lecturer's session cookie). Everything a follower receives is
// what the lecturer published: the slide, the code of a runnable block, and the events of the
// lecturer's runs of it (a run tagged with `live` is mirrored by the server, not by the client).

/** Deck names as folders (lib/deck/types DECK_NAME). */
export const LiveDeckSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, "not a deck name");
export const LiveBlockIdSchema = z.string().min(1).max(128);

/** Where the lecturer is: reveal.js indices plus the slide's id when it has one. */
export const LiveSlideSchema = z
  .object({ h: z.number().int().min(0).max(10_000), v: z.number().int().min(0).max(10_000), f: z.number().int().min(-1).max(1000) })
  .strict();
export type LiveSlide = z.infer<typeof LiveSlideSchema>;

/** One file of the lecturer's version of a block, as the editor holds it (hidden lines apart). */
export const LiveFileSchema = z
  .object({
    name: FileNameSchema,
    text: z.string(),
    hidden: z.array(z.object({ before: z.number().int().min(0), lines: z.array(z.string()) }).strict()).max(1000).nullable(),
  })
  .strict();
export type LiveFile = z.infer<typeof LiveFileSchema>;
export const LiveFilesSchema = z
  .array(LiveFileSchema)
  .min(1)
  .max(MAX_FILES)
  .refine(
    (files) => files.reduce((n, f) => n + utf8Length(f.text) + (f.hidden ?? []).reduce((m, g) => m + utf8Length(g.lines.join("\n")), 0), 0) <= MAX_SOURCE_BYTES,
    `code is larger than ${MAX_SOURCE_BYTES / 1024} KiB`,
  );

/** On a run message: mirror this run's events to the deck's room at this block. */
export const LiveRunTagSchema = z.object({ deck: LiveDeckSchema, block: LiveBlockIdSchema }).strict();
export type LiveRunTag = z.infer<typeof LiveRunTagSchema>;

/** What a session holds; a late joiner gets all of it. */
export const LiveSessionSchema = z.object({
  id: z.string(),
  deck: z.string(),
  startedAt: z.number(),
  slide: LiveSlideSchema.nullable(),
  /** The join link and QR code shown on the slide for the room. */
  showJoin: z.boolean(),
  code: z.record(z.string(), LiveFilesSchema),
  /** The lecturer's latest run per block: its events so far (output capped, see server/live). */
  runs: z.record(z.string(), z.object({ runId: z.string(), events: z.array(RunEventSchema) })),
});
export type LiveSession = z.infer<typeof LiveSessionSchema>;

export const LiveRoleSchema = z.enum(["lecturer", "student"]);
export type LiveRole = z.infer<typeof LiveRoleSchema>;

function liveClientMessages() {
  const deck = { deck: LiveDeckSchema };
  return [
    /** Receive the deck's live session (state now, events after). */
    z.object({ type: z.literal("live-join"), ...deck }).strict(),
    z.object({ type: z.literal("live-leave"), ...deck }).strict(),
    /** A follower says whether it follows or has navigated away (for the lecturer's counts). */
    z.object({ type: z.literal("live-status"), ...deck, following: z.boolean() }).strict(),
    // Control messages: lecturer only.
    z.object({ type: z.literal("live-start"), ...deck }).strict(),
    z.object({ type: z.literal("live-end"), ...deck }).strict(),
    z.object({ type: z.literal("live-slide"), ...deck, slide: LiveSlideSchema }).strict(),
    z.object({ type: z.literal("live-code"), ...deck, block: LiveBlockIdSchema, files: LiveFilesSchema }).strict(),
    z.object({ type: z.literal("live-show-join"), ...deck, show: z.boolean() }).strict(),
  ] as const;
}

/** Client messages that change a session: the server accepts them from a signed-in lecturer only. */
export const LIVE_CONTROL_TYPES = ["live-start", "live-end", "live-slide", "live-code", "live-show-join"] as const;

function liveServerMessages() {
  const deck = { deck: z.string() };
  return [
    /** Answer to live-join (and after start): the session or null, and what this connection may do. */
    z.object({ type: z.literal("live-state"), ...deck, role: LiveRoleSchema, session: LiveSessionSchema.nullable() }),
    z.object({ type: z.literal("live-slide"), ...deck, slide: LiveSlideSchema }),
    z.object({ type: z.literal("live-show-join"), ...deck, show: z.boolean() }),
    z.object({ type: z.literal("live-code"), ...deck, block: z.string(), files: LiveFilesSchema }),
    /** An event of the lecturer's run at a block; a new runId starts a new run there. */
    z.object({ type: z.literal("live-run"), ...deck, block: z.string(), runId: z.string(), event: RunEventSchema }),
    z.object({ type: z.literal("live-ended"), ...deck, reason: z.enum(["ended", "idle"]) }),
    /** To lecturer connections: students following and detached, over all instances. */
    z.object({ type: z.literal("live-counts"), ...deck, following: z.number().int(), detached: z.number().int() }),
    /** A control message that was not accepted, in words. */
    z.object({ type: z.literal("live-refused"), deck: z.string().nullable(), message: z.string() }),
  ] as const;
}

/** `run` carries the request's fields beside its id: `{type: "run", id, language, files, ...}`. */
export const RunMessageSchema = z.discriminatedUnion(
  "language",
  [
    z.object({ type: z.literal("run"), id: RunIdSchema, live: LiveRunTagSchema.optional(), ...RunRequestFields }).strict().superRefine(checkRunRequest),
    z.object({ type: z.literal("run"), id: RunIdSchema, live: LiveRunTagSchema.optional(), ...KernelRunRequestFields })
      .strict()
      .superRefine(checkKernelRequest),
  ],
  LANGUAGE_ERROR,
);

export const ClientMessageSchema = z.discriminatedUnion("type", [
  RunMessageSchema,
  ...liveClientMessages(),
  z.object({ type: z.literal("stdin"), id: RunIdSchema, data: z.string().max(64 * 1024) }),
  z.object({ type: z.literal("stdin-close"), id: RunIdSchema }),
  z.object({ type: z.literal("kill"), id: RunIdSchema }),
]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;
export type LiveClientMessage = Extract<ClientMessage, { type: `live-${string}` }>;
export const isLiveClientMessage = (m: ClientMessage): m is LiveClientMessage => m.type.startsWith("live-");
export type ClientMessageInput = z.input<typeof ClientMessageSchema>;

/** An engine event tagged with its run id: `{id, type: "stdout", data}`. */
export const RunEventMessageSchema = z.intersection(z.object({ id: RunIdSchema }), RunEventSchema);
export type RunEventMessage = z.infer<typeof RunEventMessageSchema>;

export const ServerMessageSchema = z.union([
  RunEventMessageSchema,
  /** A message the server could not accept; `id` when it could be read. The connection lives on. */
  z.object({ type: z.literal("protocol-error"), id: z.string().nullable(), message: z.string() }),
  ...liveServerMessages(),
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
export type LiveServerMessage = Extract<ServerMessage, { type: `live-${string}` }>;
export const isLiveServerMessage = (m: ServerMessage): m is LiveServerMessage => m.type.startsWith("live-");

// ---------------------------------------------------------------------------------------------
// HTTP API: POST /api/run

const ApiProgramRunRequestSchema = z
  .object({
    language: LanguageSchema,
    files: z.array(SourceFileSchema).optional(),
    /** Shorthand for a single main file. */
    code: z.string().optional(),
    stdin: z.string().max(MAX_STDIN_BYTES).optional(),
    args: z.array(z.string()).optional(),
    flags: z.array(z.string()).optional(),
    limits: LimitOverridesSchema.optional(),
  })
  .strict()
  .refine((r) => (r.files === undefined) !== (r.code === undefined), "give exactly one of 'files' or 'code'");

/**
 * A kernel run over HTTP: exactly the engine's request. `code` does not apply (a kernel has no
 * single main file): name the replaced files, e.g. `files: [{name: "src/hello.rs", content}]`.
 */
const ApiKernelRunRequestSchema = z
  .object({
    ...KernelRunRequestFields,
    code: z.never({ error: "kernel runs take 'files' (the replaced lesson files, e.g. src/hello.rs), not 'code'" }).optional(),
  })
  .strict();

export const ApiRunRequestSchema = z.discriminatedUnion("language", [ApiProgramRunRequestSchema, ApiKernelRunRequestSchema], LANGUAGE_ERROR);
export type ApiRunRequest = z.infer<typeof ApiRunRequestSchema>;

export const MAIN_FILE: Record<Language, string> = { c: "main.c", cpp: "main.cpp", asm: "main.asm", rust: "main.rs" };

export interface ApiRunResponse {
  compile: {
    ok: boolean;
    exitCode: number | null;
    stdout: string;
    stderr: string;
    diagnostics: Diagnostic[];
    timeMs: number;
    cached: boolean;
  };
  run: null | {
    exitCode: number | null;
    signal: string | null;
    stdout: string;
    stderr: string;
    timeMs: number;
    cpuMs: number;
    peakMemoryBytes: number;
    limit: LimitName | null;
    truncated: { stdout: boolean; stderr: boolean };
    message: string;
  };
  toolchain: Toolchain;
}

/** Turns a zod error into one line a person can act on: "files.0.name: file name must be relative". */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}

const encoder = new TextEncoder();
/** Byte length in UTF-8, in browser and Node alike. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}
