/**
 * One ACE editor for one file of a runnable block: mode and theme, hidden lines, diagnostics as
 * gutter annotations and underlines, Ctrl/Cmd+Enter to run, Esc to hand the keys back to the slides.
 *
 * Hidden lines are kept out of the editor (as mdBook does) and go back in when the code runs: each
 * group hangs on an ACE anchor at the visible line it precedes, so it moves with the student's edits.
 * Text typed or pasted at a group's place goes after the group (the anchor stays put), and a
 * deletion across a group leaves it where the deletion began, so replacing the whole buffer keeps
 * the prelude first and the postlude last. Undo and redo bring back where the groups were at that
 * revision. "Show hidden lines" puts them into the editor; hiding them again works until the full
 * text is edited.
 * ACE is loaded on first use, so a deck without runnable blocks never downloads it.
 */
import type { Ace } from "ace-builds";
import type { Diagnostic, Language } from "../../lib/protocol";
import { aceModeFor, mergeHidden, separateHidden, type HiddenGroup } from "../../lib/runnable";
import { defineGasMode } from "./ace-mode-gas";

type AceModule = typeof import("ace-builds");

let aceLoading: Promise<AceModule> | null = null;

async function loadAce(): Promise<AceModule> {
  aceLoading ??= (async () => {
    const ace = (await import("ace-builds")).default as unknown as AceModule;
    // The modes register themselves on the global `ace` that ace-builds sets.
    await Promise.all([
      import("ace-builds/src-noconflict/mode-c_cpp"),
      import("ace-builds/src-noconflict/mode-rust"),
      import("ace-builds/src-noconflict/mode-assembly_x86"),
      import("ace-builds/src-noconflict/theme-github_light_default"),
      import("ace-builds/src-noconflict/theme-github_dark"),
    ]);
    defineGasMode(ace);
    return ace;
  })();
  return aceLoading;
}

/** What a student's edit of one file is: the editor's text and, unless shown, the hidden groups. */
export interface FileState {
  text: string;
  /** null once the hidden lines are shown in the editor. */
  hidden: HiddenGroup[] | null;
}

export interface EditorOptions {
  element: HTMLElement;
  language: Language;
  /** The file's name: its extension picks the mode in mixed groups (max.asm beside main.c). */
  fileName: string;
  state: FileState;
  readOnly: boolean;
  /** Rows the editor grows to before it scrolls. */
  maxLines: number;
  onRun: () => void;
  onChange: () => void;
  /** The editor's accessible name: its language and how to leave it. */
  label: string;
  /** The id of the element that describes the editor's keys (aria-describedby). */
  describedBy: string;
  /** Esc was pressed in the editor: focus goes where Tab continues past the editor. */
  onLeave: () => void;
}

interface AnchoredGroup {
  anchor: Ace.Anchor | null; // null: after the last line
  lines: string[];
}

/** Where the hidden lines were at one undo revision. */
interface HiddenSnapshot {
  groups: HiddenGroup[] | null;
  beforeShow: { state: FileState; text: string } | null;
}

export class EditorController {
  private groups: AnchoredGroup[] = [];
  private shown = false;
  /** The hidden state to go back to while the shown text is unedited. */
  private beforeShow: { state: FileState; text: string } | null = null;
  private markerIds: number[] = [];
  /** Maps the last run's compiled rows to editor rows. */
  private rowOf: Array<number | null> | null = null;
  private readonly snapshots = new Map<number, HiddenSnapshot>();
  private snapshotPending = false;
  /** Set while setState replaces text and groups: the change is reported once, complete. */
  private applying = false;
  private onChange: (() => void) | null = null;

  private constructor(
    private readonly ace: AceModule,
    readonly editor: Ace.Editor,
  ) {}

  static async create(options: EditorOptions): Promise<EditorController> {
    const ace = await loadAce();
    const editor = ace.edit(options.element, {
      mode: aceModeFor(options.fileName, options.language),
      // A deck on a dark reveal.js theme gets a dark editor (DeckView sets data-tone on .reveal).
      theme: options.element.closest('[data-tone="dark"]') ? "ace/theme/github_dark" : "ace/theme/github_light_default",
      readOnly: options.readOnly,
      // C, Rust and assembly modes have no syntax worker; don't try to load one.
      useWorker: false,
      minLines: 3,
      maxLines: options.maxLines,
      fontSize: "inherit",
      tabSize: 4,
      useSoftTabs: true,
      showPrintMargin: false,
      // reveal.js scales slides with a CSS transform; ACE measures text positions (diagnostic
      // underlines, cursor) in screen pixels and must undo that scale.
      hasCssTransforms: true,
      highlightActiveLine: false,
      fixedWidthGutter: true,
      fontFamily: "var(--code-font, 'DejaVu Sans Mono', 'Liberation Mono', monospace)",
    });
    // ACE appends "Cursor at row N" to this name.
    editor.setOption("textInputAriaLabel", options.label);
    options.element.querySelector("textarea")?.setAttribute("aria-describedby", options.describedBy);
    const controller = new EditorController(ace, editor);
    const undoManager = new ace.UndoManager();
    editor.session.setUndoManager(undoManager);
    controller.setState(options.state);
    // Loading the code is not an edit the student can undo.
    undoManager.reset();
    controller.snapshots.clear();
    controller.recordSnapshot();
    // After an undo or redo, the hidden groups go back to where they were at that revision
    // (anchors only move forward with edits; they cannot follow text that comes back).
    for (const method of ["undo", "redo"] as const) {
      const original = undoManager[method].bind(undoManager);
      undoManager[method] = (session: Ace.EditSession, dontSelect?: boolean) => {
        const result = original(session, dontSelect);
        controller.restoreSnapshot(undoManager.getRevision());
        controller.onChange?.(); // saves the restored groups
        return result;
      };
    }

    editor.commands.addCommand({
      name: "run",
      bindKey: { win: "Ctrl-Enter", mac: "Command-Enter" },
      exec: () => options.onRun(),
    });
    // Esc leaves the editor: the slide keys work again, and Tab goes on past the editor (in the
    // editor Tab indents). Caught before ACE and before reveal.js, which would otherwise open
    // the overview for the same key press.
    options.element.addEventListener(
      "keydown",
      (event) => {
        if (event.key !== "Escape") return;
        event.stopPropagation();
        event.preventDefault();
        editor.blur();
        options.onLeave();
      },
      true,
    );
    editor.session.on("change", () => {
      controller.clearDiagnostics();
      // Anchors move after this listener runs: take the snapshot once the edit is complete.
      if (!(editor.session as unknown as { $fromUndo?: boolean }).$fromUndo) controller.scheduleSnapshot();
      if (!controller.applying) controller.onChange?.();
    });
    // Set after the initial state: loading the code is not a change to save.
    controller.onChange = options.onChange;
    return controller;
  }

  get hasHiddenLines(): boolean {
    return this.groups.length > 0 || this.beforeShow !== null;
  }

  get hiddenShown(): boolean {
    return this.shown;
  }

  /** Hiding again is possible while the revealed text is as it was revealed. */
  get canHideAgain(): boolean {
    return this.shown && this.beforeShow !== null && this.beforeShow.text === this.editor.getValue();
  }

  /** The editor's state, for saving. */
  get state(): FileState {
    return {
      text: this.editor.getValue(),
      hidden: this.shown ? null : this.groups.map((g) => ({ before: this.groupRow(g), lines: g.lines })),
    };
  }

  /** The file as compiled: hidden lines merged back. Remembers the row mapping for diagnostics. */
  get compiledCode(): string {
    const { text, hidden } = this.state;
    const merged = mergeHidden(text, hidden ?? []);
    this.rowOf = merged.rowOf;
    return merged.code;
  }

  setState(state: FileState): void {
    // Text first, then the groups' anchors in it; whoever listens hears of it once, complete
    // (a save in between would store the text without its hidden lines).
    this.applying = true;
    try {
      this.detachGroups();
      this.editor.setValue(state.text, -1);
      this.shown = state.hidden === null;
      this.beforeShow = null;
      this.attachGroups(state.hidden ?? []);
    } finally {
      this.applying = false;
    }
    this.onChange?.();
  }

  private attachGroups(hidden: HiddenGroup[]): void {
    this.detachGroups();
    const doc = this.editor.session.getDocument();
    this.groups = hidden.map((g) => {
      const anchor = g.before < doc.getLength() ? doc.createAnchor(g.before, 0) : null;
      // Text inserted at the group's place goes after the group: typing at the top of a
      // buffer whose prelude is hidden stays below the prelude.
      if (anchor) (anchor as unknown as { $insertRight: boolean }).$insertRight = true;
      return { anchor, lines: g.lines };
    });
  }

  private scheduleSnapshot(): void {
    if (this.snapshotPending) return;
    this.snapshotPending = true;
    queueMicrotask(() => {
      this.snapshotPending = false;
      this.recordSnapshot();
    });
  }

  private recordSnapshot(): void {
    const revision = this.editor.session.getUndoManager().getRevision();
    this.snapshots.set(revision, {
      groups: this.shown ? null : this.groups.map((g) => ({ before: this.groupRow(g), lines: g.lines })),
      beforeShow: this.beforeShow,
    });
  }

  private restoreSnapshot(revision: number): void {
    this.snapshotPending = false;
    const snapshot = this.snapshots.get(revision);
    if (!snapshot) return;
    this.shown = snapshot.groups === null;
    this.beforeShow = snapshot.beforeShow;
    this.attachGroups(snapshot.groups ?? []);
  }

  /** Shows or hides the hidden lines; returns whether they are shown now. */
  toggleHidden(): boolean {
    if (!this.shown) {
      const state = this.state;
      const { code } = mergeHidden(state.text, state.hidden ?? []);
      this.setState({ text: code, hidden: null });
      this.beforeShow = { state, text: code };
    } else if (this.canHideAgain && this.beforeShow) {
      this.setState(this.beforeShow.state);
    }
    this.recordSnapshot();
    this.onChange?.();
    return this.shown;
  }

  showDiagnostics(diagnostics: Diagnostic[], fileName: string): void {
    this.clearDiagnostics();
    const mine = diagnostics.filter((d) => d.file === fileName && d.line > 0);
    // A diagnostic on a hidden line must be seen: reveal them first.
    if (!this.shown && mine.some((d) => this.editorRow(d.line - 1) === null)) {
      this.toggleHidden();
      this.rowOf = null;
    }
    const { Range } = this.ace;
    const session = this.editor.session;
    const located = mine
      .map((d) => ({ d, row: this.editorRow(d.line - 1), endRow: this.editorRow((d.endLine ?? d.line) - 1) }))
      .filter((x): x is { d: Diagnostic; row: number; endRow: number | null } => x.row !== null);
    session.setAnnotations(
      located.map(({ d, row }) => ({
        row,
        column: Math.max(0, d.column - 1),
        text: d.code ? `${d.message} [${d.code}]` : d.message,
        type: d.severity === "error" ? "error" : d.severity === "warning" ? "warning" : "info",
      })),
    );
    for (const { d, row, endRow } of located) {
      const lastRow = endRow ?? row;
      const startCol = Math.max(0, d.column - 1);
      let endCol = (d.endColumn ?? d.column + 1) - 1;
      if (lastRow === row && endCol <= startCol) endCol = session.getLine(row).length;
      const css = d.severity === "error" ? "runner-underline-error" : "runner-underline-warning";
      this.markerIds.push(session.addMarker(new Range(row, startCol, lastRow, endCol), css, "text", false));
    }
  }

  clearDiagnostics(): void {
    this.editor.session.clearAnnotations();
    for (const id of this.markerIds) this.editor.session.removeMarker(id);
    this.markerIds = [];
  }

  /** Moves the cursor to a compiled file's line and column. */
  goTo(line: number, column: number): void {
    const row = this.editorRow(line - 1);
    this.editor.focus();
    if (row !== null) this.editor.gotoLine(row + 1, Math.max(0, column - 1), true);
  }

  destroy(): void {
    this.detachGroups();
    this.editor.destroy();
  }

  /** The editor row of a compiled row, or null when it is hidden. */
  private editorRow(compiledRow: number): number | null {
    if (this.shown || !this.rowOf) return compiledRow;
    return this.rowOf[compiledRow] ?? null;
  }

  /**
   * The visible row a group goes before. An anchor left inside a line (a deletion that began
   * mid-line swallowed the group's line start) puts the group after that line: the text before
   * the anchor came before the group.
   */
  private groupRow(group: AnchoredGroup): number {
    if (!group.anchor) return this.editor.session.getLength();
    return group.anchor.column > 0 ? group.anchor.row + 1 : group.anchor.row;
  }

  private detachGroups(): void {
    for (const g of this.groups) g.anchor?.detach();
    this.groups = [];
  }

  /** The author's file split for the editor. */
  static initialState(code: string, hiddenRows: number[]): FileState {
    const { visible, groups } = separateHidden(code, hiddenRows);
    return { text: visible, hidden: groups };
  }
}
