/**
 * The runner's console: a list of lines that renders only the rows in view.
 *
 * Output arrives in chunks, often thousands a second; each chunk only updates the line list, and
 * one animation frame later the rows in view (plus a few around) are drawn. A run that prints
 * 100k lines therefore costs the page about as much as one that prints 30. Rows have one fixed
 * height, and long lines wrap at the console's width in characters (monospace), so the row of a
 * scroll position is a binary search, not a layout. While the view is at the bottom it follows
 * the output; scrolled up, it stays where the reader put it until they scroll back down.
 *
 * Hand-written rather than a virtual-list library: the libraries measure rows in the DOM, and the
 * fixed row height is what makes following the end exact and each frame's work constant.
 *
 * When the console holds its maximum, it keeps the first part of the output (the beginning is
 * what explains the rest) and says how much it left out; lines after that (the run's end, a
 * limit message) are still shown.
 *
 * Copying: the page holds only the rows in view, so the browser's own copy would give only those.
 * The view keeps the reader's selection as positions in its lines (updated from the page's
 * selection while its ends are drawn, kept while they are scrolled away), and a copy of a
 * selection inside the console gives every line between its ends. Ctrl+A in the console selects
 * the whole output. Rows that stay in view are not redrawn, so a selection being made survives
 * output arriving and scrolling.
 */
import type { Diagnostic } from "../../lib/protocol";

export type ConsoleKind = "stdout" | "stderr" | "system" | "stdin" | "diagnostic";

interface Segment {
  kind: ConsoleKind;
  text: string;
}

interface Line {
  segments: Segment[];
  length: number;
  /** Still being written: the next chunk of the same stream continues it. */
  open: boolean;
  diagnostic?: Diagnostic;
}

export interface ConsoleViewOptions {
  /** Characters kept before the console stops taking output (the first part stays). */
  maxChars?: number;
  maxLines?: number;
  /** Called when a diagnostic line is clicked. */
  onDiagnostic?: (diagnostic: Diagnostic) => void;
  /** Called when the rows the output needs change, while they are fewer than this many. */
  rowsWatch?: { below: number; onChange: (rows: number) => void };
}

/** A place in the output: a line and a character in it. */
interface Place {
  line: number;
  col: number;
}

/** What a drawn row shows: its line, and where in the line the row starts. */
interface RowInfo {
  line: number;
  from: number;
}

/** Rows drawn above and below the ones in view, so a small scroll shows no gap. */
const OVERSCAN = 8;
const TAB = 8;

export class ConsoleView {
  readonly element: HTMLDivElement;
  private readonly sizer: HTMLDivElement;
  private readonly rows: HTMLDivElement;
  private lines: Line[] = [];
  /** rowStart[i]: the first display row of line i. */
  private rowStart: number[] = [];
  private totalRows = 0;
  private chars = 0;
  private full = false;
  private dropped = 0;
  private cols = 80;
  private rowHeight = 0;
  private following = true;
  /** Where following last scrolled to. */
  private followedTop = 0;
  private frame: number | null = null;
  private reportedRows = -1;
  /** The rows in the page: display rows [drawnFirst, drawnFirst + drawn.length). */
  private drawn: HTMLElement[] = [];
  private drawnFirst = 0;
  /** Display rows from here on changed since they were drawn (Infinity: none). */
  private dirtyFrom = 0;
  private readonly rowInfo = new WeakMap<Element, RowInfo>();
  /** The reader's selection in the output, when it is in the console. */
  private selection: { anchor: Place; focus: Place } | null = null;
  /** The page points where the view last put the selection's ends. */
  private placed: { anchor: Place; focus: Place } | null = null;
  /** A mouse button is down in the console: the browser is making a selection, leave it alone. */
  private selecting = false;
  private readonly resizeObserver: ResizeObserver;
  private readonly maxChars: number;
  private readonly maxLines: number;

  constructor(
    host: HTMLElement,
    private readonly options: ConsoleViewOptions = {},
  ) {
    this.maxChars = options.maxChars ?? 4_000_000;
    this.maxLines = options.maxLines ?? 200_000;
    this.element = document.createElement("div");
    this.element.className = "runner-console";
    this.element.setAttribute("role", "log");
    this.element.setAttribute("aria-label", "program output");
    // Rows are redrawn as they scroll: announcing each redraw would drown a screen reader; the
    // status line (role=status) announces how the run went.
    this.element.setAttribute("aria-live", "off");
    this.element.tabIndex = 0;
    this.sizer = document.createElement("div");
    this.sizer.className = "runner-console-sizer";
    this.rows = document.createElement("div");
    this.rows.className = "runner-console-rows";
    this.sizer.append(this.rows);
    this.element.append(this.sizer);
    host.append(this.element);
    this.element.addEventListener("scroll", () => {
      // Back at the bottom (within half a row): follow the output again. Above the place the view
      // last put itself: the reader scrolled up, so stay put. Anything else is the view's own
      // scrolling (or the box resizing) and changes nothing.
      const { scrollTop, clientHeight, scrollHeight } = this.element;
      if (scrollTop + clientHeight >= scrollHeight - this.rowHeight / 2 - 1) this.following = true;
      else if (scrollTop < this.followedTop - 1) this.following = false;
      this.schedule();
    });
    this.resizeObserver = new ResizeObserver(() => {
      if (this.measure()) this.reflow();
      this.schedule();
    });
    this.resizeObserver.observe(this.element);
    this.element.addEventListener("pointerdown", (event) => {
      this.selecting = true;
      // Shift+click extends the selection from its anchor, which may be one the view placed.
      if (!event.shiftKey) this.placed = null;
    });
    window.addEventListener("pointerup", this.onPointerUp);
    document.addEventListener("selectionchange", this.onSelectionChange);
    document.addEventListener("copy", this.onCopy);
    this.element.addEventListener("keydown", (event) => {
      if (event.key.toLowerCase() === "a" && (event.ctrlKey || event.metaKey) && !event.altKey) {
        event.preventDefault();
        this.selectAll();
      }
    });
  }

  get lineCount(): number {
    return this.lines.length;
  }

  /** One row's height in CSS pixels (0 until the console was first laid out). */
  get rowPx(): number {
    return this.rowHeight;
  }

  /** Display rows the output takes (wrapped lines count once per row). */
  get contentRows(): number {
    return this.totalRows;
  }

  get isFollowing(): boolean {
    return this.following;
  }

  /** All text the console holds, e.g. for copying. */
  get text(): string {
    return this.lines.map(lineText).join("\n");
  }

  /** The text of the reader's selection in the console ("" when nothing is selected in it). */
  get selectedText(): string {
    const sel = this.selection;
    if (!sel) return "";
    const [from, to] = comparePlaces(sel.anchor, sel.focus) <= 0 ? [sel.anchor, sel.focus] : [sel.focus, sel.anchor];
    if (from.line >= this.lines.length) return "";
    if (from.line === to.line) return lineText(this.lines[from.line]).slice(from.col, to.col);
    const parts = [lineText(this.lines[from.line]).slice(from.col)];
    for (let i = from.line + 1; i < to.line && i < this.lines.length; i++) parts.push(lineText(this.lines[i]));
    if (to.line < this.lines.length) parts.push(lineText(this.lines[to.line]).slice(0, to.col));
    return parts.join("\n");
  }

  /** Selects the whole output (Ctrl+A in the console). */
  selectAll(): void {
    if (this.lines.length === 0) return;
    const last = this.lines.length - 1;
    this.selection = { anchor: { line: 0, col: 0 }, focus: { line: last, col: this.lines[last].length } };
    this.showSelection();
  }

  /** Appends program output or typed input; a system or diagnostic message gets a line of its own. */
  append(kind: ConsoleKind, text: string, diagnostic?: Diagnostic): void {
    if (kind === "system" || kind === "diagnostic") {
      this.closeLine();
      this.pushLine({ segments: [{ kind, text }], length: text.length, open: false, diagnostic });
      this.schedule();
      return;
    }
    if (this.full) {
      this.dropped += text.length;
      return;
    }
    const parts = text.replace(/\r\n/g, "\n").split("\n");
    parts.forEach((part, i) => {
      if (this.full) {
        this.dropped += part.length + (i > 0 ? 1 : 0);
        return;
      }
      if (i > 0) this.newline();
      if (part) this.write(kind, part);
    });
    this.schedule();
  }

  clear(): void {
    this.selection = null;
    this.dirtyFrom = 0;
    this.lines = [];
    this.rowStart = [];
    this.totalRows = 0;
    this.chars = 0;
    this.full = false;
    this.dropped = 0;
    this.following = true;
    this.followedTop = 0;
    this.schedule();
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    window.removeEventListener("pointerup", this.onPointerUp);
    document.removeEventListener("selectionchange", this.onSelectionChange);
    document.removeEventListener("copy", this.onCopy);
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.element.remove();
  }

  /** Writes text without newlines into the open line of this stream, opening one if needed. */
  private write(kind: ConsoleKind, raw: string): void {
    let line = this.lines.at(-1);
    if (!line?.open) {
      line = { segments: [], length: 0, open: true };
      this.pushLine(line);
    }
    // The rows drawn for this line change.
    this.dirtyFrom = Math.min(this.dirtyFrom, this.rowStart[this.lines.length - 1]);
    // A carriage return starts the line over, as a terminal's progress line does.
    const cr = raw.lastIndexOf("\r");
    if (cr >= 0) {
      this.chars -= line.length;
      line.segments = [];
      line.length = 0;
      raw = raw.slice(cr + 1);
    }
    let text = raw.includes("\t") ? expandTabs(raw, line.length) : raw;
    if (this.chars + text.length > this.maxChars) {
      const room = Math.max(0, this.maxChars - this.chars);
      this.dropped += text.length - room;
      text = text.slice(0, room);
      this.markFull();
    }
    const last = line.segments.at(-1);
    if (last && last.kind === kind) last.text += text;
    else line.segments.push({ kind, text });
    line.length += text.length;
    this.chars += text.length;
    this.updateLastRows();
  }

  /** A newline ends the line being written, or, when none is, is an empty line of its own. */
  private newline(): void {
    if (this.lines.at(-1)?.open) this.closeLine();
    else {
      this.pushLine({ segments: [], length: 0, open: false });
      this.closeLine();
    }
  }

  private closeLine(): void {
    const line = this.lines.at(-1);
    if (line) line.open = false;
    if (!this.full && this.lines.length >= this.maxLines) this.markFull();
  }

  private markFull(): void {
    if (this.full) return;
    this.full = true;
    const kept = this.lines.length;
    const note = `… the console keeps the first ${kept.toLocaleString("en")} lines of output; what came after them is not shown`;
    this.closeLine();
    this.pushLine({ segments: [{ kind: "system", text: note }], length: note.length, open: false });
  }

  private pushLine(line: Line): void {
    this.rowStart.push(this.totalRows);
    this.lines.push(line);
    this.totalRows += this.rowsOf(line);
  }

  private updateLastRows(): void {
    const i = this.lines.length - 1;
    if (i >= 0) this.totalRows = this.rowStart[i] + this.rowsOf(this.lines[i]);
  }

  private rowsOf(line: Line): number {
    return Math.max(1, Math.ceil(line.length / this.cols));
  }

  /** Reads the row height and the width in characters; true when the width changed. */
  private measure(): boolean {
    const probe = document.createElement("div");
    probe.className = "runner-console-row";
    probe.style.cssText = "position:absolute;visibility:hidden;white-space:pre;height:auto;line-height:var(--row)";
    probe.textContent = "0".repeat(100);
    this.rows.append(probe);
    const height = probe.offsetHeight;
    const charWidth = probe.scrollWidth / 100;
    probe.remove();
    if (!(height > 0 && charWidth > 0)) return false; // not laid out (hidden): keep the last figures
    // Rows are drawn exactly this (whole-pixel) height, so row n starts at n × rowHeight.
    this.rowHeight = height;
    this.element.style.setProperty("--row-h", `${height}px`);
    const style = getComputedStyle(this.element);
    const inner = this.element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const cols = Math.max(10, Math.floor(inner / charWidth));
    if (cols === this.cols) return false;
    this.cols = cols;
    return true;
  }

  /** Recomputes every line's rows after the width changed. */
  private reflow(): void {
    this.dirtyFrom = 0;
    let row = 0;
    for (let i = 0; i < this.lines.length; i++) {
      this.rowStart[i] = row;
      row += this.rowsOf(this.lines[i]);
    }
    this.totalRows = row;
  }

  private schedule(): void {
    if (this.frame !== null) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  private render(): void {
    if (!this.rowHeight && this.measure()) this.reflow();
    const rowHeight = this.rowHeight || 18;
    this.element.dataset.lines = String(this.lines.length);
    this.sizer.style.height = `${this.totalRows * rowHeight}px`;
    if (this.following) {
      this.element.scrollTop = this.element.scrollHeight;
      this.followedTop = this.element.scrollTop;
    }
    const top = this.element.scrollTop;
    const height = this.element.clientHeight;
    const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
    const last = Math.min(this.totalRows, Math.ceil((top + height) / rowHeight) + OVERSCAN);
    if (this.redraw(first, last)) {
      this.rows.style.transform = `translateY(${first * rowHeight}px)`;
      // The page's selection may have lost an end with a row that went: draw it again from the model.
      if (!this.selecting) this.showSelection();
    }
    const watch = this.options.rowsWatch;
    const watched = watch ? Math.min(this.totalRows, watch.below) : 0;
    if (watch && watched !== this.reportedRows) {
      this.reportedRows = watched;
      watch.onChange(this.totalRows);
    }
  }

  /**
   * Makes the page hold display rows [first, last): rows already drawn and unchanged stay (a
   * selection in them survives), the others are drawn. Returns true when the page changed.
   */
  private redraw(first: number, last: number): boolean {
    const keepFrom = Math.max(first, this.drawnFirst);
    const keepTo = Math.min(last, this.drawnFirst + this.drawn.length, this.dirtyFrom);
    this.dirtyFrom = Number.POSITIVE_INFINITY;
    if (keepFrom >= keepTo) {
      if (this.drawn.length === 0 && first >= last) return false;
      this.drawn = this.drawRows(first, last);
      this.drawnFirst = first;
      this.rows.replaceChildren(...this.drawn);
      return true;
    }
    if (keepFrom === first && keepTo === last && this.drawnFirst === first && this.drawn.length === last - first) return false;
    const kept = this.drawn.slice(keepFrom - this.drawnFirst, keepTo - this.drawnFirst);
    for (const row of this.drawn) if (!kept.includes(row)) row.remove();
    const before = this.drawRows(first, keepFrom);
    const after = this.drawRows(keepTo, last);
    kept[0].before(...before);
    kept[kept.length - 1].after(...after);
    this.drawn = [...before, ...kept, ...after];
    this.drawnFirst = first;
    return true;
  }

  private drawRows(first: number, last: number): HTMLElement[] {
    const rows: HTMLElement[] = [];
    let lineIndex = this.lineAt(first);
    for (let row = first; row < last && lineIndex < this.lines.length; row++) {
      while (lineIndex + 1 < this.lines.length && this.rowStart[lineIndex + 1] <= row) lineIndex++;
      rows.push(this.drawRow(lineIndex, row - this.rowStart[lineIndex]));
    }
    return rows;
  }

  private readonly onPointerUp = () => {
    this.selecting = false;
  };

  /** Follows the page's selection while its ends are in drawn rows; an end that is not keeps its place. */
  private readonly onSelectionChange = () => {
    const sel = document.getSelection();
    if (!sel || sel.rangeCount === 0 || !sel.anchorNode || !sel.focusNode) return;
    const inside = this.element.contains(sel.anchorNode) && this.element.contains(sel.focusNode);
    if (!inside) {
      // The reader selected something else (or clicked elsewhere): forget the console's selection.
      if (!this.element.contains(sel.anchorNode) && !this.element.contains(sel.focusNode)) this.selection = null;
      return;
    }
    // An end where the view put it (clamped to the drawn rows) keeps the model's place; an end in
    // no drawn row (its row was scrolled away) keeps its place too.
    const same = (a: Place | undefined, b: Place | null) => a !== undefined && b !== null && comparePlaces(a, b) === 0;
    const anchorAt = this.placeOf(sel.anchorNode, sel.anchorOffset);
    const focusAt = this.placeOf(sel.focusNode, sel.focusOffset);
    const anchor = (same(this.placed?.anchor, anchorAt) ? null : anchorAt) ?? this.selection?.anchor;
    const focus = (same(this.placed?.focus, focusAt) ? null : focusAt) ?? this.selection?.focus;
    this.selection = anchor && focus ? { anchor, focus } : null;
  };

  private readonly onCopy = (event: ClipboardEvent) => {
    const sel = document.getSelection();
    if (!sel?.anchorNode || !sel.focusNode || !this.element.contains(sel.anchorNode) || !this.element.contains(sel.focusNode)) return;
    const text = this.selectedText;
    if (!text || !event.clipboardData) return;
    event.clipboardData.setData("text/plain", text);
    event.preventDefault();
  };

  /** The output place of a point of the page's selection, if it is in a drawn row. */
  private placeOf(node: Node, offset: number): Place | null {
    const element = node instanceof Element ? node : node.parentElement;
    const row = element?.closest(".runner-console-row");
    const info = row && this.rowInfo.get(row);
    if (!row || !info || !this.rows.contains(row)) return null;
    const range = document.createRange();
    range.setStart(row, 0);
    range.setEnd(node, offset);
    const line = this.lines[info.line];
    return { line: info.line, col: Math.min(line?.length ?? 0, info.from + range.toString().length) };
  }

  /** Puts the model's selection on the page, its ends clamped to the rows drawn. */
  private showSelection(): void {
    const sel = this.selection;
    const page = document.getSelection();
    if (!sel || !page || this.drawn.length === 0 || comparePlaces(sel.anchor, sel.focus) === 0) return;
    const anchor = this.domPoint(sel.anchor);
    const focus = this.domPoint(sel.focus);
    // The browser may report these points in other nodes: remember the places they stand for.
    this.placed = { anchor: anchor.place, focus: focus.place };
    page.setBaseAndExtent(anchor.node, anchor.offset, focus.node, focus.offset);
  }

  /**
   * Where an output place is on the page: in its drawn row, else the start of the first or the end
   * of the last drawn row; with the place that point stands for.
   */
  private domPoint(place: Place): { node: Node; offset: number; place: Place } {
    const first = this.drawn[0];
    const last = this.drawn[this.drawn.length - 1];
    const firstInfo = this.rowInfo.get(first)!;
    const start = { line: firstInfo.line, col: firstInfo.from };
    if (comparePlaces(place, start) <= 0) return { node: first, offset: 0, place: start };
    for (const row of this.drawn) {
      const info = this.rowInfo.get(row)!;
      if (info.line !== place.line || place.col < info.from || place.col > info.from + this.cols) continue;
      // The text node and offset of the place within the row's spans.
      let left = place.col - info.from;
      for (const span of row.querySelectorAll("span")) {
        const text = span.firstChild;
        const length = text?.textContent?.length ?? 0;
        if (text && left <= length) return { node: text, offset: left, place };
        left -= length;
      }
      return { node: row, offset: row.childNodes.length, place };
    }
    const lastInfo = this.rowInfo.get(last)!;
    const end = { line: lastInfo.line, col: Math.min(this.lines[lastInfo.line]?.length ?? 0, lastInfo.from + this.cols) };
    return { node: last, offset: last.childNodes.length, place: end };
  }

  /** The line that holds display row `row`. */
  private lineAt(row: number): number {
    let lo = 0;
    let hi = this.lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.rowStart[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return Math.max(0, lo);
  }

  private drawRow(lineIndex: number, part: number): HTMLElement {
    const line = this.lines[lineIndex];
    const diagnostic = line.diagnostic;
    const el = document.createElement(diagnostic ? "button" : "div");
    if (diagnostic) {
      const button = el as HTMLButtonElement;
      button.type = "button";
      button.className = `runner-console-row runner-line runner-${diagnostic.severity}`;
      button.addEventListener("click", () => this.options.onDiagnostic?.(diagnostic));
    } else el.className = "runner-console-row";
    const from = part * this.cols;
    const to = from + this.cols;
    let offset = 0;
    for (const segment of line.segments) {
      const end = offset + segment.text.length;
      if (end > from && offset < to) {
        const span = document.createElement("span");
        span.className = `runner-${segment.kind}`;
        span.textContent = segment.text.slice(Math.max(0, from - offset), Math.min(segment.text.length, to - offset));
        el.append(span);
      }
      offset = end;
    }
    // The line's end as text: copying rows, or reading the console's text, gives lines.
    if (to >= line.length) el.append("\n");
    this.rowInfo.set(el, { line: lineIndex, from });
    return el;
  }
}

function lineText(line: Line): string {
  return line.segments.map((s) => s.text).join("");
}

function comparePlaces(a: Place, b: Place): number {
  return a.line - b.line || a.col - b.col;
}

function expandTabs(text: string, column: number): string {
  let out = "";
  let col = column;
  for (const ch of text) {
    if (ch === "\t") {
      const n = TAB - (col % TAB);
      out += " ".repeat(n);
      col += n;
    } else {
      out += ch;
      col++;
    }
  }
  return out;
}
