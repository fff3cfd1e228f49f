"use client";
/**
 * A runnable example: an ACE editor per visible file, Run/Stop/Reset, a console that streams
 * stdout and stderr, an input line for stdin, and a status line with the run's progress.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type { Diagnostic, RunEvent } from "../../lib/protocol";
import { describeZodError, RunRequestSchema } from "../../lib/protocol";
import { blockRequest, separateHidden, splitHiddenLines, type RunnableBlock } from "../../lib/runnable";
import { EditorController } from "./editor-controller";
import "./runner.css";
import { clearEdit, fingerprint, loadEdit, saveEdit } from "./edit-storage";
import { pageConnection, type RunSession } from "./run-connection";
import { ConsoleView, type ConsoleKind } from "./console-view";
import { fitConsole } from "./console-fit";

type Phase = "idle" | "queued" | "compiling" | "running" | "done";

export interface CodeRunnerProps {
  deck: string;
  block: RunnableBlock;
}

/** Editor height when the block does not set one: what is left of the slide below the runner's top. */
const LINE_PX = 21;
const CHROME_PX = 200; // toolbar, hint, status and the console at its full height
function linesThatFit(root: HTMLElement): number {
  const slides = root.closest<HTMLElement>(".slides");
  const section = root.closest<HTMLElement>("section");
  const slideHeight = parseFloat(slides?.style.height ?? "");
  if (!section || !(slideHeight > 0)) return 14;
  let top = 0;
  for (let el: HTMLElement | null = root; el && el !== section; el = el.offsetParent as HTMLElement | null) top += el.offsetTop;
  // What the slide shows below the runner (an admonition, a list) needs its room too; the expected
  // output gives way to the console, and speaker notes are not on the slide.
  let block: HTMLElement = root;
  const isSlideBody = (el: HTMLElement) => el === section || el.classList.contains("slide-content");
  while (block.parentElement && !isSlideBody(block.parentElement)) block = block.parentElement;
  let below = 0;
  for (let el = block.nextElementSibling as HTMLElement | null; el; el = el.nextElementSibling as HTMLElement | null) {
    if (!el.matches(".output, aside.notes")) below += el.offsetHeight;
  }
  return Math.max(6, Math.min(24, Math.floor((slideHeight - top - below - CHROME_PX) / LINE_PX)));
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

export default function CodeRunner({ deck, block }: CodeRunnerProps) {
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
    const create = async () => {
      for (const name of visibleFiles) {
        const host = editorHosts.current.get(name);
        if (!host || editors.current.has(name)) continue;
        const author = authorVersion(block, name);
        const authorHash = fingerprint(block.files.find((f) => f.name === name)!.source);
        const saved = loadEdit(deck, storageId(name), authorHash);
        const controller = await EditorController.create({
          element: host,
          language: block.language,
          fileName: name,
          state: saved?.state ?? EditorController.initialState(author.code, author.hiddenLines),
          readOnly: block.readOnly,
          maxLines: block.lines ?? linesThatFit(root),
          onRun: () => runRef.current(),
          onChange: () => {
            saveEdit(deck, storageId(name), { state: controller.state, authorHash });
            refreshHiddenToggle();
          },
        });
        if (cancelled) return controller.destroy();
        editors.current.set(name, controller);
      }
      refreshHiddenToggle();
      setEditorsReady(true);
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
            if (d.severity === "error" || d.severity === "warning") {
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
    );
  }, [block, onEvent]);
  runRef.current = run;

  const stop = () => session.current?.kill();

  const reset = () => {
    for (const [name, editor] of editors.current) {
      const author = authorVersion(block, name);
      editor.setState(EditorController.initialState(author.code, author.hiddenLines));
      editor.clearDiagnostics();
      clearEdit(deck, storageId(name));
    }
    clearConsole();
    setStatus("reset to the author's code");
  };

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
    if (!consoleShown) {
      for (const editor of editors.current.values()) editor.yieldHeight(null);
      return;
    }
    let frame = 0;
    const refit = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const view = consoleView.current;
        const result = view && fitConsole(root, view.element, view.rowPx || 18);
        if (!result) return;
        const rows = String(result.rows);
        const changed = root.style.getPropertyValue("--runner-console-rows") !== rows || result.shortfall > 0;
        root.style.setProperty("--runner-console-rows", rows);
        if (result.shortfall > 0) editors.current.get(activeFileRef.current)?.yieldHeight(result.shortfall);
        // reveal.js centres the slide again on resize; the runner's new height needs that.
        if (changed) window.dispatchEvent(new Event("resize"));
      });
    };
    refit();
    window.addEventListener("resize", refit);
    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener("resize", refit);
    };
  }, [consoleShown, phase]);

  // Once the console shows the real output, the author's expected output below the runner
  // (a `[.output]` block) gives its room on the slide to the console.
  useEffect(() => {
    const placeholder = rootRef.current?.parentElement;
    if (placeholder) placeholder.toggleAttribute("data-ran", consoleShown);
  }, [consoleShown]);

  return (
    <div className="runner" data-runner tabIndex={-1} ref={rootRef} data-phase={phase}>
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
        <button type="button" className="runner-run" onClick={run} disabled={!editorsReady} title="Run (Ctrl+Enter)">
          ▶ Run
        </button>
        <button type="button" onClick={stop} disabled={!busy} title="Stop the running program">
          ■ Stop
        </button>
        <button type="button" onClick={reset} disabled={!editorsReady || block.readOnly} title="Bring back the author's code">
          ↺ Reset
        </button>
      </div>
      {/* Until ACE takes over the code is plain, readable text. */}
      {!editorsReady && (
        <pre className="runner-fallback">
          {separateHidden(authorVersion(block, activeFile).code, authorVersion(block, activeFile).hiddenLines).visible}
        </pre>
      )}
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
      <div className="runner-hint">Esc leaves the editor · Ctrl+Enter runs</div>
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
      <div className="runner-status" role="status">
        {status}
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
