/**
 * Editor heights on a slide. Every runnable editor on a slide shows its whole code when the slide
 * has the room, shares what room there is when it has not (and then scrolls, see CodeRunner's hint),
 * and is measured again whenever the slide's layout may have changed: when its editors are created,
 * when a fragment is shown or hidden, on resize, when the console or an image changes a height.
 *
 * One SlideFit per slide (<section>); runners register their editors with it. In the scroll view
 * (phones, `?view=scroll`) a slide grows with its content, so there editors show all their lines.
 */
import type { Ace } from "ace-builds";
import { slideControlBoxes } from "./console-fit";

export interface FitTarget {
  editor: Ace.Editor;
  /** Rows the author fixed with `lines=`, or null to fit the slide. */
  fixedLines: number | null;
  /** Told after each fit: rows shown and rows the code has. */
  onFit(shownRows: number, totalRows: number): void;
}

/** No editor gets fewer rows than this, even on a crowded slide. */
const MIN_ROWS = 3;
/** Before the first measurement (the slide is not laid out yet). */
const FALLBACK_LINE_PX = 21;

const fits = new WeakMap<HTMLElement, SlideFit>();

/** Registers an editor with its slide's fit; returns the function that unregisters it. */
export function fitOnSlide(section: HTMLElement, target: FitTarget): () => void {
  let fit = fits.get(section);
  if (!fit) {
    fit = new SlideFit(section);
    fits.set(section, fit);
  }
  fit.add(target);
  return () => {
    if (fit.remove(target)) fits.delete(section);
  };
}

/** True when reveal.js lays slides out as a scrolling page (its scroll view). */
export function isScrollView(element: Element): boolean {
  return element.closest(".reveal-scroll") !== null;
}

class SlideFit {
  private readonly targets = new Set<FitTarget>();
  private readonly observer: ResizeObserver;
  private readonly revealRoot: HTMLElement | null;
  private frame = 0;
  private readonly schedule = () => {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.fit();
    });
  };

  constructor(private readonly section: HTMLElement) {
    // A size change of the slide or of anything on it (the console after a run, an image that
    // loaded, web fonts) is a reason to measure again; a fit that changes nothing settles it.
    this.observer = new ResizeObserver(this.schedule);
    this.observer.observe(section);
    for (const child of section.children) this.observer.observe(child);
    // reveal.js dispatches its events on its root element.
    this.revealRoot = section.closest<HTMLElement>(".reveal");
    for (const type of REVEAL_EVENTS) this.revealRoot?.addEventListener(type, this.schedule);
    window.addEventListener("resize", this.schedule);
  }

  add(target: FitTarget): void {
    this.targets.add(target);
    target.editor.renderer.on("afterRender", this.onRender);
    this.schedule();
  }

  /** Returns true when the slide has no editors left (the fit is then disposed of). */
  remove(target: FitTarget): boolean {
    target.editor.renderer.off("afterRender", this.onRender);
    this.targets.delete(target);
    if (this.targets.size > 0) return false;
    this.observer.disconnect();
    for (const type of REVEAL_EVENTS) this.revealRoot?.removeEventListener(type, this.schedule);
    window.removeEventListener("resize", this.schedule);
    cancelAnimationFrame(this.frame);
    return true;
  }

  /**
   * Edits change the number of rows an editor wants, and ACE measures its font (the line height)
   * only after its first render, later on a busy machine: re-fit when either changed.
   */
  private lastShape = new WeakMap<FitTarget, string>();
  private readonly onRender = () => {
    for (const t of this.targets) {
      const shape = `${t.editor.session.getScreenLength()}×${t.editor.renderer.lineHeight}`;
      if (this.lastShape.get(t) !== shape) {
        this.lastShape.set(t, shape);
        this.schedule();
      }
    }
  };

  /** The slide's height in its own (unscaled) pixels, or null outside a slide deck's layout. */
  private slideHeight(): number | null {
    const slides = this.section.closest<HTMLElement>(".slides");
    const h = Number.parseFloat(slides?.style.height ?? "");
    return h > 0 ? h : null;
  }

  /** Where the slide's content ends, in slide pixels from the slide's top. */
  private contentBottom(): number {
    const style = getComputedStyle(this.section);
    let bottom = 0;
    for (const child of this.section.children) {
      if (!(child instanceof HTMLElement) || child.matches("aside.notes")) continue;
      const margin = Number.parseFloat(getComputedStyle(child).marginBottom) || 0;
      bottom = Math.max(bottom, child.offsetTop + child.offsetHeight + margin);
    }
    // reveal.js centres (and sizes PDF pages) by the slide's scrollHeight, which also counts margins
    // that stick out of the last child.
    return Math.max(bottom + (Number.parseFloat(style.paddingBottom) || 0), this.section.scrollHeight);
  }

  fit(): void {
    const targets = [...this.targets];
    if (targets.length === 0) return;
    const wanted = targets.map((t) => t.editor.session.getScreenLength());
    const slideHeight = this.slideHeight();
    const hidden = this.section.offsetParent === null && getComputedStyle(this.section).position !== "fixed";
    let rows: number[];
    if (isScrollView(this.section) || slideHeight === null) {
      rows = targets.map((t, i) => t.fixedLines ?? wanted[i]);
    } else if (hidden) {
      return; // not laid out (a slide far from the current one): measured when it shows
    } else {
      rows = this.share(targets, wanted, slideHeight);
    }
    targets.forEach((t, i) => {
      const maxLines = Math.max(MIN_ROWS, rows[i]);
      if (t.editor.getOption("maxLines") !== maxLines) {
        t.editor.setOption("maxLines", maxLines);
        t.editor.resize(true);
      }
      t.onFit(Math.min(maxLines, wanted[i]), wanted[i]);
    });
  }

  /**
   * How much taller the slide's content may grow before a runner reaches reveal.js's arrows or
   * slide number (console-fit.ts keeps the console clear of them the same way). A centred slide
   * grows half upwards, so a runner's bottom moves by half of the growth.
   */
  private roomAboveControls(targets: FitTarget[], slideHeight: number): number {
    const reveal = this.revealRoot;
    const slides = this.section.closest<HTMLElement>(".slides");
    if (!reveal || !slides) return Number.POSITIVE_INFINITY;
    const slidesBox = slides.getBoundingClientRect();
    const scale = slidesBox.height / slideHeight;
    if (!(scale > 0)) return Number.POSITIVE_INFINITY;
    let room = Number.POSITIVE_INFINITY;
    // In the slide's own pixels, from layout offsets: bounding boxes would move with the slide
    // transition's transform while reveal.js animates the slide in.
    const controls = slideControlBoxes(reveal).map((c) => ({
      top: (c.top - CONTROLS_GAP - slidesBox.top) / scale,
      left: (c.left - slidesBox.left) / scale,
      right: (c.right - slidesBox.left) / scale,
    }));
    for (const t of targets) {
      const runner = t.editor.container.closest<HTMLElement>("[data-runner]") ?? t.editor.container;
      let top = 0;
      let left = 0;
      for (let el: HTMLElement | null = runner; el && el !== slides; el = el.offsetParent as HTMLElement | null) {
        top += el.offsetTop;
        left += el.offsetLeft;
      }
      const bottom = top + runner.offsetHeight;
      const right = left + runner.offsetWidth;
      for (const c of controls) {
        if (c.left >= right || c.right <= left) continue;
        room = Math.min(room, reveal.classList.contains("center") ? 2 * (c.top - bottom) : c.top - bottom);
      }
    }
    return room;
  }

  /** Rows for each editor: the slide's free height shared out, smallest wishes first. */
  private share(targets: FitTarget[], wanted: number[], slideHeight: number): number[] {
    const lineHeight = targets[0].editor.renderer.lineHeight || FALLBACK_LINE_PX;
    let editorsHeight = 0;
    let extras = 0;
    for (const t of targets) {
      const height = t.editor.container.offsetHeight;
      const shown = Math.max(MIN_ROWS, Math.min(t.editor.session.getScreenLength(), t.editor.getOption("maxLines") ?? MIN_ROWS));
      editorsHeight += height;
      // Padding, a horizontal scrollbar: height an editor has beyond its rows.
      extras += Math.max(0, height - shown * lineHeight);
    }
    // A runner that cannot show all its code says so in a line of its own (".runner-more"): count
    // that line only where code is cut, or an editor one row short would stay short for its sake.
    let notices = 0;
    for (const t of targets) {
      if (t.fixedLines === null) notices += t.editor.container.parentElement?.querySelector<HTMLElement>(".runner-more")?.offsetHeight ?? 0;
    }
    const noticeHeight = lineHeight * 1.15;
    const free = Math.min(slideHeight - this.contentBottom(), this.roomAboveControls(targets, slideHeight)) + editorsHeight - extras + notices;
    const rowsFor = (room: number): number[] => {
      let rowsLeft = Math.floor(room / lineHeight);
      const rows = targets.map((t) => t.fixedLines ?? 0);
      const flexible = targets.map((_, i) => i).filter((i) => targets[i].fixedLines === null);
      for (const i of targets.keys()) if (targets[i].fixedLines !== null) rowsLeft -= rows[i];
      flexible.sort((a, b) => wanted[a] - wanted[b]);
      flexible.forEach((i, k) => {
        const share = Math.floor(rowsLeft / (flexible.length - k));
        rows[i] = Math.max(MIN_ROWS, Math.min(wanted[i], share));
        rowsLeft -= rows[i];
      });
      return rows;
    };
    const rows = rowsFor(free);
    const cut = targets.filter((t, i) => t.fixedLines === null && rows[i] < wanted[i]).length;
    if (cut === 0) return rows;
    return rowsFor(free - cut * noticeHeight);
  }
}

/** Air between a runner and reveal.js's controls, in viewport pixels. */
const CONTROLS_GAP = 6;

const REVEAL_EVENTS = ["ready", "slidechanged", "slidetransitionend", "fragmentshown", "fragmenthidden", "resize", "overviewhidden"];
