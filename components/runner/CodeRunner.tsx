"use client";
/**
 * A runnable example: an ACE editor per visible file, Run/Stop/Reset, a console that streams
 * stdout and stderr, an input line for stdin, and a status line with the run's progress.
 */
import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import type { Diagnostic, RunEvent } from "../../lib/protocol";
import { describeZodError, RunRequestSchema } from "../../lib/protocol";
import { blockRequest, mergeHidden, splitHiddenLines, type RunnableBlock } from "../../lib/runnable";
import { EditorController, type FileState } from "./editor-controller";
import "./runner.css";
import {
  clearDeckEdits,
  clearEdit,
  EDITS_CHANGED_EVENT,
  editedExamples,
  fingerprint,
  loadEdit,
  RESET_ALL_EVENT,
  saveEdit,
} from "./edit-storage";
import { fitOnSlide } from "./slide-fit";
import { pageConnection, type RunSession } from "./run-connection";
import { ConsoleView, type ConsoleKind } from "./console-view";
import { fitConsole, MAX_CONSOLE_ROWS } from "./console-fit";

/** Asks a runner to fit its console to the slide again (its output's rows changed). */
const REFIT_EVENT = "runner-refit";
import type { RunnerLiveLink } from "../live/runner-link";

type Phase = "idle" | "queued" | "compiling" | "running" | "done";

export interface CodeRunnerProps {
  deck: string;
  block: RunnableBlock;
  /** The live lecture (components/live): publishes a lecturer's edits and runs, copies the lecturer's code in. */
  live?: RunnerLiveLink;
}

function authorVersion(block: RunnableBlock, fileName: string) {
  const file = block.files.find((f) => f.name === fileName)!;
  return splitHiddenLines(file.source, block.language);
}

/** "main.c:4:5: " — as much of the place as the toolchain named (a linker error may name no line, or no file). */
function diagnosticPlace(d: { file: string; line: number; column: number }): string {
  if (!d.file) return "";
  return `${d.file}${d.line > 0 ? `:${d.line}${d.column > 0 ? `:${d.column}` : ""}` : ""}: `;
}

function authorState(block: RunnableBlock, fileName: string): FileState {
  const author = authorVersion(block, fileName);
  return EditorController.initialState(author.code, author.hiddenLines);
}

/** Same program: showing the hidden lines is not an edit. */
function sameState(a: FileState, b: FileState): boolean {
  return mergeHidden(a.text, a.hidden ?? []).code === mergeHidden(b.text, b.hidden ?? []).code;
}

const LANGUAGE_NAMES: Record<RunnableBlock["language"], string> = { c: "C", cpp: "C++", asm: "assembly", rust: "Rust" };

/** Ctrl+Enter outside an editor runs the example of the slide on screen (the focused one, else the first). */
function isSlideRunKey(event: KeyboardEvent): boolean {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.defaultPrevented) return false;
  const target = event.target as HTMLElement | null;
  // In an editor the editor's own Ctrl+Enter runs; in a form field Enter belongs to the field.
  return !target?.closest(".ace_editor, input, textarea, select, [contenteditable]");
}

export default function CodeRunner({ deck, block, live }: CodeRunnerProps) {
  const visibleFiles = block.files.filter((f) => f.visible).map((f) => f.name);
  const [activeFile, setActiveFile] = useState(block.mainFile);
  const [phase, setPhase] = useState<Phase>("idle");
  const [status, setStatus] = useState("");
  const [hasOutput, setHasOutput] = useState(false);
  const [input, setInput] = useState("");
  const [hiddenToggle, setHiddenToggle] = useState<"none" | "show" | "hide" | "locked">("none");
  const [editorsReady, setEditorsReady] = useState(false);
  const editorHosts = useRef(new Map<string, HTMLDivElement>());
  const editors = useRef(new Map<string, EditorController>());
  const session = useRef<RunSession | null>(null);
  const consoleHost = useRef<HTMLDivElement>(null);
  const consoleView = useRef<ConsoleView | null>(null);
  const runRef = useRef<() => void>(() => {});

  const storageId = (file: string) => `${block.id}/${file}`;
  const authorHash = (file: string) => fingerprint(block.files.find((f) => f.name === file)!.source);
  const hintId = useId();
  const hintRef = useRef<HTMLDivElement>(null);
  /** Rows of the active file's code the slide has no room for (the editor scrolls). */
  const [cutRows, setCutRows] = useState<Record<string, number>>({});
  /** Files whose text differs from the author's (saved in the browser). */
  const [editedFiles, setEditedFiles] = useState<Set<string>>(() => new Set());
  /** How many examples of this deck hold an edit (for "Reset all"). */
  const [deckEdits, setDeckEdits] = useState(0);
  /** The state each file starts from: the saved edit, else the author's version. */
  const startStates = useMemo(() => {
    const states = new Map<string, FileState>();
    for (const name of visibleFiles) states.set(name, loadEdit(deck, storageId(name), authorHash(name))?.state ?? authorState(block, name));
    return states;
    // The block is fixed for the runner's life; a reset-all re-creates the runner's editors' states itself.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useEffect(() => {
    setEditedFiles(new Set(visibleFiles.filter((name) => !sameState(startStates.get(name)!, authorState(block, name)))));
    const recount = (event?: Event) => {
      if (!event || (event as CustomEvent<string>).detail === deck) setDeckEdits(editedExamples(deck).size);
    };
    recount();
    window.addEventListener(EDITS_CHANGED_EVENT, recount);
    return () => window.removeEventListener(EDITS_CHANGED_EVENT, recount);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  /** The hidden-lines button follows the active file's editor. */
  const refreshHiddenToggle = (file = activeFileRef.current) => {
    const editor = editors.current.get(file);
    if (!editor?.hasHiddenLines) return setHiddenToggle("none");
    if (!editor.hiddenShown) return setHiddenToggle("show");
    setHiddenToggle(editor.canHideAgain ? "hide" : "locked");
  };
  const activeFileRef = useRef(activeFile);
  activeFileRef.current = activeFile;
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => refreshHiddenToggle(activeFile), [activeFile, editorsReady]);

  // Editors are created once the runner is first on screen: a deck of 30 blocks stays quick.
  const rootRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const root = rootRef.current;
    if (!root) return;
    let cancelled = false;
    const section = root.closest<HTMLElement>("section");
    const unfits: Array<() => void> = [];
    const create = async () => {
      for (const name of visibleFiles) {
        const host = editorHosts.current.get(name);
        if (!host || editors.current.has(name)) continue;
        const hash = authorHash(name);
        const saved = loadEdit(deck, storageId(name), hash);
        const language = LANGUAGE_NAMES[block.language];
        const controller = await EditorController.create({
          element: host,
          language: block.language,
          fileName: name,
          state: saved?.state ?? authorState(block, name),
          readOnly: block.readOnly,
          maxLines: block.lines ?? 14,
          onRun: () => runRef.current(),
          onChange: () => {
            // Back at the author's version (typed back, or undone): not an edit any more.
            const edited = !sameState(controller.state, authorState(block, name));
            if (edited) saveEdit(deck, storageId(name), { state: controller.state, authorHash: hash });
            else clearEdit(deck, storageId(name));
            setEditedFiles((prev) => {
              if (prev.has(name) === edited) return prev;
              const next = new Set(prev);
              if (edited) next.add(name);
              else next.delete(name);
              return next;
            });
            refreshHiddenToggle();
            live?.edited();
          },
          label: `${language} code of ${visibleFiles.length > 1 ? name : "the example"}${block.readOnly ? ", read-only" : ""}; Escape, then Tab, leaves the editor`,
          describedBy: hintId,
          onLeave: () => hintRef.current?.focus(),
        });
        if (cancelled) return controller.destroy();
        editors.current.set(name, controller);
        if (section) {
          unfits.push(
            fitOnSlide(section, {
              editor: controller.editor,
              fixedLines: block.lines ?? null,
              onFit: (shown, total) => setCutRows((prev) => (prev[name] === total - shown ? prev : { ...prev, [name]: total - shown })),
            }),
          );
        }
      }
      refreshHiddenToggle();
      setEditorsReady(true);
      live?.attach({
        files: () => [...editors.current].map(([name, e]) => ({ name, ...e.state })),
        setFiles: (files) => {
          for (const f of files) editors.current.get(f.name)?.setState({ text: f.text, hidden: f.hidden });
        },
      });
    };
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting)) {
        observer.disconnect();
        void create();
      }
    });
    // Watch the slide, not the runner: a runner low on a tall slide may never itself enter the viewport.
    observer.observe(root.closest("section") ?? root);
    return () => {
      cancelled = true;
      observer.disconnect();
      for (const unfit of unfits) unfit();
      for (const e of editors.current.values()) e.destroy();
      editors.current.clear();
      session.current?.kill();
    };
    // The block is fixed for the runner's life.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // The console is a controller of its own (console-view.ts): output never goes through React state.
  useEffect(() => {
    const host = consoleHost.current;
    if (!host) return;
    const view = new ConsoleView(host, {
      // While the console grows with its output, each new row needs room on the slide.
      rowsWatch: { below: MAX_CONSOLE_ROWS + 1, onChange: () => rootRef.current?.dispatchEvent(new Event(REFIT_EVENT)) },
      onDiagnostic: (d) => {
        setActiveFile(d.file);
        editors.current.get(d.file)?.goTo(d.line, d.column);
      },
    });
    consoleView.current = view;
    return () => {
      view.destroy();
      consoleView.current = null;
    };
  }, []);

  const append = useCallback((kind: ConsoleKind, text: string, diagnostic?: Diagnostic) => {
    consoleView.current?.append(kind, text, diagnostic);
    setHasOutput(true);
  }, []);

  const clearConsole = () => {
    consoleView.current?.clear();
    setHasOutput(false);
  };

  const onEvent = useCallback(
    (event: RunEvent) => {
      switch (event.type) {
        case "queued":
          setPhase("queued");
          setStatus(queuedStatus(event.position, event.estimatedWaitMs));
          break;
        case "compiling":
          setPhase("compiling");
          setStatus(`compiling with ${event.toolchain.name} ${event.toolchain.version}…`);
          break;
        case "diagnostics":
          for (const d of event.items) {
            // "help" items are the engine's own advice (e.g. which Rust crates a run can use).
            if (d.severity === "error" || d.severity === "warning" || d.severity === "help") {
              append("diagnostic", `${diagnosticPlace(d)}${d.severity}: ${d.message}`, d);
            }
          }
          for (const [name, editor] of editors.current) editor.showDiagnostics(event.items, name);
          break;
        case "compiled":
          setStatus(event.ok ? `compiled in ${Math.round(event.timeMs)} ms${event.cached ? " (cached)" : ""}` : "compilation failed");
          if (event.stderr.trim()) append("stderr", event.stderr);
          break;
        case "running":
          setPhase("running");
          setStatus((s) => `${s} · running…`);
          break;
        case "stdout":
        case "stderr":
          append(event.type, event.data);
          break;
        case "stats":
          break;
        case "exit": {
          setPhase("done");
          session.current = null;
          const times = event.phase === "run" ? ` · ${Math.round(event.wallMs)} ms wall, ${Math.round(event.cpuMs)} ms CPU` : "";
          setStatus(`${event.message}${times}`);
          if (event.limit || event.exitCode !== 0) append("system", event.message);
          break;
        }
        case "error":
          setPhase("done");
          session.current = null;
          setStatus(event.message);
          append("system", event.message);
          break;
      }
    },
    [append],
  );

  const run = useCallback(() => {
    if (session.current) session.current.kill();
    for (const e of editors.current.values()) e.clearDiagnostics();
    clearConsole();
    setPhase("queued");
    setStatus("sending…");
    const files = block.files.map((f) => ({
      name: f.name,
      content: editors.current.get(f.name)?.compiledCode ?? splitHiddenLines(f.source, block.language).code,
    }));
    const request = RunRequestSchema.safeParse(blockRequest(block, files, block.stdin));
    if (!request.success) {
      onEvent({ type: "error", code: "invalid", message: `this example cannot run: ${describeZodError(request.error)}` });
      return;
    }
    // Until the server answers, the status says why the run waits (refused, offline, restarting).
    session.current = pageConnection().run(
      request.data,
      onEvent,
      (why) => why && setStatus(why),
      () => {
        // The server restarted mid-run: the run starts over elsewhere, so its first attempt's output goes.
        clearConsole();
        setPhase("queued");
        setStatus("server restarting: running it again on another server…");
      },
      live?.runTag(),
    );
  }, [block, onEvent]);
  runRef.current = run;

  const stop = () => session.current?.kill();

  const reset = () => {
    for (const [name, editor] of editors.current) {
      editor.setState(authorState(block, name));
      editor.clearDiagnostics();
    }
    for (const name of visibleFiles) {
      clearEdit(deck, storageId(name));
      startStates.set(name, authorState(block, name));
    }
    setEditedFiles(new Set());
    clearConsole();
    setStatus("reset to the author's code");
    refreshHiddenToggle();
  };
  const resetRef = useRef(reset);
  resetRef.current = reset;

  const resetAll = () => {
    const n = editedExamples(deck).size;
    if (!window.confirm(`Reset ${n === 1 ? "the edited example" : `all ${n} edited examples`} of this deck to the author's code?`)) return;
    clearDeckEdits(deck);
  };

  // "Reset all" pressed in any runner of this deck (clearDeckEdits has already forgotten the edits).
  useEffect(() => {
    const onResetAll = (event: Event) => {
      if ((event as CustomEvent<string>).detail === deck) resetRef.current();
    };
    window.addEventListener(RESET_ALL_EVENT, onResetAll);
    return () => window.removeEventListener(RESET_ALL_EVENT, onResetAll);
  }, [deck]);

  // Ctrl+Enter on the slide, outside any editor, runs this example when it is the slide's focused
  // one, or the slide's first when none has the focus.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const root = rootRef.current;
      const section = root?.closest("section");
      if (!root || !section?.classList.contains("present") || !isSlideRunKey(event)) return;
      const focused = document.activeElement?.closest("[data-runner]");
      const mine = focused ? focused === root : section.querySelector("[data-runner]") === root;
      if (!mine || !editorsReady) return;
      event.preventDefault();
      runRef.current();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [editorsReady]);

  const edited = editedFiles.size > 0;
  // The author's expected output below the runner says whose version it belongs to once the code is edited.
  useEffect(() => {
    const output = rootRef.current?.parentElement?.nextElementSibling;
    if (!output?.matches(".output, .compile-error")) return;
    let note = output.querySelector<HTMLElement>(":scope > .output-note");
    if (!edited) return note?.remove();
    if (!note) {
      note = document.createElement("div");
      note.className = "output-note";
      output.prepend(note);
    }
    note.textContent = output.matches(".compile-error")
      ? "The author's version fails to compile like this; your code is edited."
      : "Expected output of the author's version; your code is edited.";
  }, [edited]);

  const sendInput = (eof: boolean) => {
    const s = session.current;
    if (!s) return;
    if (input || !eof) {
      s.writeStdin(`${input}\n`);
      append("stdin", `${input}\n`);
      setInput("");
    }
    if (eof) s.closeStdin();
  };

  const busy = phase === "queued" || phase === "compiling" || phase === "running";
  const consoleShown = hasOutput || busy;

  // The console grows into the slide's free room, at least ten rows (console-fit.ts); when even
  // that does not fit, the editor scrolls instead of pushing the runner under the slide controls.
  useEffect(() => {
    const root = rootRef.current;
    if (!root) return;
    if (!consoleShown) return;
    let frame = 0;
    let grown = false;
    const refit = (event?: Event) => {
      // The console grew: reveal.js must centre the slide again even if nothing else changed.
      if (event?.type === REFIT_EVENT) grown = true;
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const view = consoleView.current;
        const result = view && fitConsole(root, view.element, view.rowPx || 18, view.contentRows);
        if (!result) return;
        const rows = String(result.rows);
        const changed = root.style.getPropertyValue("--runner-console-rows") !== rows || grown;
        grown = false;
        root.style.setProperty("--runner-console-rows", rows);
        // The editor gives up what the console lacks by itself: slide-fit.ts measures the slide
        // again when the console's height changes.
        // reveal.js centres the slide again on resize; the runner's new height needs that.
        if (changed) window.dispatchEvent(new Event("resize"));
      });
    };
    refit();
    window.addEventListener("resize", refit);
    root.addEventListener(REFIT_EVENT, refit);
    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener("resize", refit);
      root.removeEventListener(REFIT_EVENT, refit);
    };
  }, [consoleShown, phase]);

  // reveal.js centres a slide only when it lays the deck out (on resize): whenever the runner's
  // height changes (its console, its editor fitting the slide), ask for that, or the slide grows
  // downwards only and its bottom runs under the controls.
  useEffect(() => {
    const root = rootRef.current;
    if (!root || typeof ResizeObserver === "undefined") return;
    let height = -1;
    let frame = 0;
    const observer = new ResizeObserver(() => {
      if (root.offsetHeight === height) return;
      const first = height < 0;
      height = root.offsetHeight;
      if (first || !root.closest(".reveal.center") || root.closest(".reveal-scroll")) return;
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => window.dispatchEvent(new Event("resize")));
    });
    observer.observe(root);
    return () => {
      observer.disconnect();
      cancelAnimationFrame(frame);
    };
  }, []);

  // Once the console shows the real output, the author's expected output below the runner
  // (a `[.output]` block) gives its room on the slide to the console.
  useEffect(() => {
    const placeholder = rootRef.current?.parentElement;
    if (placeholder) placeholder.toggleAttribute("data-ran", consoleShown);
  }, [consoleShown]);

  return (
    <div
      className="runner"
      data-runner
      tabIndex={-1}
      ref={rootRef}
      data-phase={phase}
      data-edited={edited || undefined}
    >
      <div className="runner-toolbar">
        {visibleFiles.length > 1 &&
          visibleFiles.map((name) => (
            <button
              key={name}
              type="button"
              className={`runner-tab${name === activeFile ? " active" : ""}`}
              onClick={() => setActiveFile(name)}
            >
              {name}
            </button>
          ))}
        {edited && (
          <span className="runner-edited" title="You changed this example; it is kept in this browser. Reset brings back the author's code.">
            edited
          </span>
        )}
        <span className="runner-spacer" />
        {hiddenToggle !== "none" && (
          <button
            type="button"
            disabled={hiddenToggle === "locked"}
            title={hiddenToggle === "locked" ? "The revealed code was edited; Reset brings back the author's version" : undefined}
            onClick={() => {
              editors.current.get(activeFile)?.toggleHidden();
              refreshHiddenToggle();
            }}
          >
            {hiddenToggle === "show" ? "Show hidden lines" : "Hide hidden lines"}
          </button>
        )}
        <button type="button" className="runner-run" onClick={run} disabled={!editorsReady} aria-label="Run the example" title="Run (Ctrl+Enter)">
          <span aria-hidden="true">▶ </span>Run
        </button>
        <button type="button" onClick={stop} disabled={!busy} aria-label="Stop the running program" title="Stop the running program">
          <span aria-hidden="true">■ </span>Stop
        </button>
        <button
          type="button"
          onClick={reset}
          disabled={!editorsReady || block.readOnly || !edited}
          aria-label="Reset this example to the author's code"
          title="Bring back the author's code"
        >
          <span aria-hidden="true">↺ </span>Reset
        </button>
        {/* Reset all once another example of the deck is edited too (this one alone: Reset). */}
        {deckEdits > (edited ? 1 : 0) && (
          <button
            type="button"
            onClick={resetAll}
            aria-label={`Reset all edited examples of this deck (${deckEdits})`}
            title="Bring back the author's code in every example of this deck"
          >
            <span aria-hidden="true">↺ </span>Reset all ({deckEdits})
          </button>
        )}
      </div>
      {/* Until ACE takes over the code is plain, readable text (the student's edit, if any). */}
      {!editorsReady && <pre className="runner-fallback">{startStates.get(activeFile)?.text}</pre>}
      {visibleFiles.map((name) => (
        // ACE owns these divs' children; React never renders into them.
        <div
          key={name}
          className="runner-editor"
          hidden={!editorsReady || name !== activeFile}
          ref={(el) => {
            if (el) editorHosts.current.set(name, el);
          }}
        />
      ))}
      {/* Where the code ends on a slide without room for all of it. */}
      {(cutRows[activeFile] ?? 0) > 0 && (
        <div className="runner-more">
          {cutRows[activeFile]} more {cutRows[activeFile] === 1 ? "line" : "lines"} below: scroll the editor
        </div>
      )}
      {/* ConsoleView owns this div's children; React never renders into it. */}
      <div className="runner-console-host" ref={consoleHost} hidden={!consoleShown} />
      {phase === "running" && (
        <form
          className="runner-input"
          onSubmit={(e) => {
            e.preventDefault();
            sendInput(false);
          }}
        >
          <input
            value={input}
            onChange={(e) => setInput(e.target.value)}
            placeholder="type input for the program, Enter sends a line"
            aria-label="program input"
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                e.stopPropagation();
                (e.target as HTMLInputElement).blur();
              }
              if (e.key === "d" && e.ctrlKey) {
                e.preventDefault();
                sendInput(true);
              }
            }}
          />
          <button type="submit">Send</button>
          <button type="button" onClick={() => sendInput(true)} title="End of input (Ctrl+D)">
            EOF
          </button>
        </form>
      )}
      <div className="runner-footer">
        <div className="runner-status" role="status">
          {status}
        </div>
        {/* Esc in the editor focuses the hint: Tab then goes on past the runner. */}
        <div className="runner-hint" id={hintId} ref={hintRef} tabIndex={-1}>
          Esc then Tab leaves the editor · Ctrl+Enter runs
        </div>
      </div>
    </div>
  );
}

/** "queued: position 3, about 2 s": where the run stands, and the wait the server estimates. */
function queuedStatus(position: number, estimatedWaitMs: number | undefined): string {
  const where = position > 0 ? `queued: position ${position}` : "queued";
  if (estimatedWaitMs === undefined) return where;
  const seconds = Math.max(1, Math.round(estimatedWaitMs / 1000));
  return `${where}, about ${seconds} s`;
}
