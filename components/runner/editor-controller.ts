/**
 * One ACE editor for one runnable block: mode and theme, hidden lines folded away, diagnostics as
 * gutter annotations and underlines, Ctrl/Cmd+Enter to run, Esc to hand the keys back to the slides.
 * ACE is loaded on first use, so a deck without runnable blocks never downloads it.
 */
import type { Ace } from "ace-builds";
import type { Diagnostic, Language } from "../../lib/protocol";
import { lineRuns } from "../../lib/runnable";

type AceModule = typeof import("ace-builds");

let aceLoading: Promise<AceModule> | null = null;

async function loadAce(): Promise<AceModule> {
  aceLoading ??= (async () => {
    const ace = (await import("ace-builds")).default as unknown as AceModule;
    // The modes register themselves on the global `ace` that ace-builds sets.
    await Promise.all([
      import("ace-builds/src-noconflict/mode-c_cpp"),
      import("ace-builds/src-noconflict/mode-rust"),
      import("ace-builds/src-noconflict/theme-github_light_default"),
    ]);
    return ace;
  })();
  return aceLoading;
}

export interface EditorOptions {
  element: HTMLElement;
  language: Language;
  code: string;
  /** 0-based rows hidden until the reader asks to see them. */
  hiddenRows: number[];
  readOnly: boolean;
  /** Rows the editor grows to before it scrolls. */
  maxLines: number;
  onRun: () => void;
  onChange: () => void;
}

export class EditorController {
  private hiddenAnchors: Array<[Ace.Anchor, Ace.Anchor]> = [];
  private markerIds: number[] = [];
  private hiddenShown = false;

  private constructor(
    private readonly ace: AceModule,
    readonly editor: Ace.Editor,
  ) {}

  static async create(options: EditorOptions): Promise<EditorController> {
    const ace = await loadAce();
    const editor = ace.edit(options.element, {
      mode: options.language === "c" ? "ace/mode/c_cpp" : "ace/mode/rust",
      theme: "ace/theme/github_light_default",
      value: options.code,
      readOnly: options.readOnly,
      // C and Rust modes have no syntax worker; don't try to load one.
      useWorker: false,
      minLines: 3,
      maxLines: options.maxLines,
      fontSize: "inherit",
      tabSize: 4,
      useSoftTabs: true,
      showPrintMargin: false,
      highlightActiveLine: false,
      fixedWidthGutter: true,
      fontFamily: "var(--code-font, 'DejaVu Sans Mono', 'Liberation Mono', monospace)",
    });
    const controller = new EditorController(ace, editor);
    editor.session.setUndoManager(new ace.UndoManager());
    editor.clearSelection();
    controller.anchorHidden(options.hiddenRows);
    controller.foldHidden();

    editor.commands.addCommand({
      name: "run",
      bindKey: { win: "Ctrl-Enter", mac: "Command-Enter" },
      exec: () => options.onRun(),
    });
    // Esc leaves the editor: the slide keys work again. Caught before ACE and before reveal.js,
    // which would otherwise open the overview for the same key press.
    options.element.addEventListener(
      "keydown",
      (event) => {
        if (event.key !== "Escape") return;
        event.stopPropagation();
        event.preventDefault();
        editor.blur();
        (options.element.closest("[data-runner]") as HTMLElement | null)?.focus();
      },
      true,
    );
    editor.session.on("change", () => options.onChange());
    return controller;
  }

  get code(): string {
    return this.editor.getValue();
  }

  /** Rows currently marked hidden (they move with edits). */
  get hiddenRows(): number[] {
    const rows: number[] = [];
    for (const [start, end] of this.hiddenAnchors) {
      for (let r = start.row; r <= end.row; r++) rows.push(r);
    }
    return rows;
  }

  get hasHiddenLines(): boolean {
    return this.hiddenAnchors.length > 0;
  }

  setCode(code: string, hiddenRows: number[]): void {
    this.editor.session.unfold();
    this.editor.setValue(code, -1);
    this.anchorHidden(hiddenRows);
    if (!this.hiddenShown) this.foldHidden();
  }

  /** Shows or hides the hidden lines; returns whether they are shown now. */
  toggleHidden(): boolean {
    this.hiddenShown = !this.hiddenShown;
    if (this.hiddenShown) this.editor.session.unfold();
    else this.foldHidden();
    return this.hiddenShown;
  }

  showDiagnostics(diagnostics: Diagnostic[], fileName: string): void {
    this.clearDiagnostics();
    const { Range } = this.ace;
    const session = this.editor.session;
    const mine = diagnostics.filter((d) => d.file === fileName && d.line > 0);
    session.setAnnotations(
      mine.map((d) => ({
        row: d.line - 1,
        column: Math.max(0, d.column - 1),
        text: d.code ? `${d.message} [${d.code}]` : d.message,
        type: d.severity === "error" ? "error" : d.severity === "warning" ? "warning" : "info",
      })),
    );
    for (const d of mine) {
      const startRow = d.line - 1;
      const endRow = (d.endLine ?? d.line) - 1;
      const startCol = Math.max(0, d.column - 1);
      let endCol = (d.endColumn ?? d.column + 1) - 1;
      if (endRow === startRow && endCol <= startCol) endCol = session.getLine(startRow).length;
      const range = new Range(startRow, startCol, endRow, endCol);
      const css = d.severity === "error" ? "runner-underline-error" : "runner-underline-warning";
      this.markerIds.push(session.addMarker(range, css, "text", false));
    }
    // A diagnostic on a hidden line must be seen: unfold.
    const hidden = new Set(this.hiddenRows);
    if (!this.hiddenShown && mine.some((d) => hidden.has(d.line - 1))) this.toggleHidden();
  }

  clearDiagnostics(): void {
    this.editor.session.clearAnnotations();
    for (const id of this.markerIds) this.editor.session.removeMarker(id);
    this.markerIds = [];
  }

  goTo(line: number, column: number): void {
    this.editor.focus();
    this.editor.gotoLine(line, Math.max(0, column - 1), true);
  }

  destroy(): void {
    this.editor.destroy();
  }

  private anchorHidden(rows: number[]): void {
    for (const [start, end] of this.hiddenAnchors) {
      start.detach();
      end.detach();
    }
    const doc = this.editor.session.getDocument();
    this.hiddenAnchors = lineRuns(rows)
      .filter(([a]) => a < doc.getLength())
      .map(([a, b]) => [doc.createAnchor(a, 0), doc.createAnchor(Math.min(b, doc.getLength() - 1), 0)]);
  }

  private foldHidden(): void {
    const { Range } = this.ace;
    const session = this.editor.session;
    const last = session.getLength() - 1;
    for (const [start, end] of this.hiddenAnchors) {
      const a = start.row;
      const b = end.row;
      // Fold from the end of the line above through the end of the run, so the rows vanish;
      // a run at the top folds through the start of the row below it instead.
      const range =
        a > 0
          ? new Range(a - 1, session.getLine(a - 1).length, b, session.getLine(b).length)
          : b < last
            ? new Range(0, 0, b + 1, 0)
            : null;
      if (!range) continue;
      try {
        session.addFold("", range);
      } catch {
        // Overlapping folds after heavy edits: leave those lines visible rather than fail.
      }
    }
  }
}
