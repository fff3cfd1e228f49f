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
    return this.lines.map((l) => l.segments.map((s) => s.text).join("")).join("\n");
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
    const rows: HTMLElement[] = [];
    let lineIndex = this.lineAt(first);
    for (let row = first; row < last && lineIndex < this.lines.length; row++) {
      while (lineIndex + 1 < this.lines.length && this.rowStart[lineIndex + 1] <= row) lineIndex++;
      rows.push(this.drawRow(this.lines[lineIndex], row - this.rowStart[lineIndex]));
    }
    this.rows.style.transform = `translateY(${first * rowHeight}px)`;
    this.rows.replaceChildren(...rows);
    const watch = this.options.rowsWatch;
    const watched = watch ? Math.min(this.totalRows, watch.below) : 0;
    if (watch && watched !== this.reportedRows) {
      this.reportedRows = watched;
      watch.onChange(this.totalRows);
    }
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

  private drawRow(line: Line, part: number): HTMLElement {
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
    return el;
  }
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
