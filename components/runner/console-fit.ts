/**
 * How tall the console may grow on its slide: into the room the slide has left, never below
 * reveal.js's controls or slide number, and never fewer than MIN_CONSOLE_ROWS rows. When even
 * that many rows do not fit, the editor gives up the difference (it scrolls instead).
 *
 * Measured in viewport pixels (getBoundingClientRect) because reveal.js scales the slides; the
 * results are converted back to rows. A vertically centred slide grows by half above and half
 * below, so its room is counted twice over what is left below it.
 */

export const MIN_CONSOLE_ROWS = 10;
/** Beyond this the console is taller than anyone reads at once. */
export const MAX_CONSOLE_ROWS = 40;
/** Air between the runner and the controls, in viewport pixels. */
const GAP = 6;

export interface ConsoleFit {
  /** Rows the console may show. */
  rows: number;
  /** Viewport pixels the runner still lacks with `rows` rows: the editor should give them up. */
  shortfall: number;
}

/** contentRows: rows the console's output needs; the editor yields only for rows that are there. */
export function fitConsole(runner: HTMLElement, consoleEl: HTMLElement, rowCssPx: number, contentRows: number): ConsoleFit | null {
  const reveal = runner.closest<HTMLElement>(".reveal");
  const slides = reveal?.querySelector<HTMLElement>(".slides");
  const section = runner.closest<HTMLElement>("section");
  if (!reveal || !slides || !section) return null;
  // Scroll and print views lay slides out as pages: nothing to fit.
  // (reveal.js marks the scroll view on its viewport element, the parent of .reveal.)
  if (reveal.closest(".reveal-scroll") || document.documentElement.classList.contains("print-pdf")) return null;
  const consoleBox = consoleEl.getBoundingClientRect();
  if (!(consoleEl.offsetHeight > 0 && consoleBox.height > 0)) return null;
  const scale = consoleBox.height / consoleEl.offsetHeight;
  const rowPx = rowCssPx * scale;

  const slidesBox = slides.getBoundingClientRect();
  const runnerBox = runner.getBoundingClientRect();
  let limit = slidesBox.bottom;
  for (const box of slideControlBoxes(reveal)) {
    if (box.left < runnerBox.right && box.right > runnerBox.left) limit = Math.min(limit, box.top - GAP);
  }

  const sectionBox = section.getBoundingClientRect();
  // The slide's content (the runner included) as it is now, and the most it may be: a centred
  // slide grows half upwards, so its bottom may reach the limit when its height is twice the
  // room from the slide's top to the limit, less the slide's height.
  const centred = reveal.classList.contains("center");
  const maxContent = centred ? 2 * (limit - slidesBox.top) - slidesBox.height : limit - sectionBox.top;
  const room = consoleBox.height + (maxContent - sectionBox.height);
  const style = getComputedStyle(consoleEl);
  const chrome =
    (consoleEl.offsetHeight - consoleEl.clientHeight + parseFloat(style.paddingTop) + parseFloat(style.paddingBottom)) * scale;
  const fitting = Math.floor((room - chrome) / rowPx);
  return {
    rows: Math.max(MIN_CONSOLE_ROWS, Math.min(MAX_CONSOLE_ROWS, fitting)),
    shortfall: Math.max(0, (Math.min(MIN_CONSOLE_ROWS, contentRows) - fitting) * rowPx),
  };
}

/**
 * Where reveal.js's arrows and slide number are (the .controls box itself is empty: its buttons are
 * placed absolutely), in viewport pixels.
 *
 * From layout offsets, not bounding boxes: reveal.js animates the arrows with transforms (an arrow
 * that becomes enabled slides 10 px into place over 0.2 s; a "highlight" arrow bounces for a
 * minute), and a fit measured mid-animation stays wrong once the animation ends, as nothing tells
 * the fit to measure again. Hidden arrows are `visibility: hidden` at once; their opacity fades.
 */
export function slideControlBoxes(reveal: HTMLElement): DOMRect[] {
  const boxes: DOMRect[] = [];
  const origin = reveal.getBoundingClientRect();
  for (const el of reveal.querySelectorAll<HTMLElement>(".controls button, .slide-number")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    if (!(el.offsetWidth > 0 && el.offsetHeight > 0)) continue;
    let left = 0;
    let top = 0;
    let at: HTMLElement | null = el;
    while (at && at !== reveal) {
      left += at.offsetLeft;
      top += at.offsetTop;
      at = at.offsetParent as HTMLElement | null;
    }
    boxes.push(at === reveal ? new DOMRect(origin.left + left, origin.top + top, el.offsetWidth, el.offsetHeight) : el.getBoundingClientRect());
  }
  return boxes;
}
