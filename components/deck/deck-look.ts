/**
 * Client side of what the converter's standalone page does around the slides (lib/deck/server/look.ts is
 * the server side): the deck's docinfo in <head> and at the end of <body>, inline scripts of the slides
 * (passthrough blocks, header/footer docinfo), math typeset with the site's own MathJax, and the theme's tone
 * (light/dark) when the server could not know it (a custom theme). Each function returns its undo.
 */
import type { DeckLook } from "@/lib/deck/types";
import { pageNonce } from "./csp-nonce";

/** Scripts inserted with innerHTML do not run: replace each by a fresh copy that does (in document order). */
function activateScripts(container: ParentNode): void {
  // The page's Content-Security-Policy runs scripts with its nonce only; the deck's own scripts get it.
  const nonce = pageNonce();
  for (const old of Array.from(container.querySelectorAll("script"))) {
    const fresh = document.createElement("script");
    for (const a of Array.from(old.attributes)) fresh.setAttribute(a.name, a.value);
    if (nonce) fresh.nonce = nonce;
    fresh.textContent = old.textContent;
    old.replaceWith(fresh);
  }
}

/** Run the inline scripts the slides carry, as the converter's page would while loading. */
export function runSlideScripts(root: HTMLElement): void {
  activateScripts(root.querySelector(".slides") ?? root);
}

/** Insert docinfo HTML into `parent` (head or body), scripts running; returns a function removing it again. */
export function insertDocinfo(html: string, parent: HTMLElement, where: "head" | "footer"): () => void {
  if (!html.trim()) return () => {};
  const template = document.createElement("template");
  template.innerHTML = html;
  const nodes = Array.from(template.content.childNodes);
  for (const n of nodes) if (n instanceof Element) n.setAttribute("data-docinfo", where);
  const holder = document.createElement("div");
  holder.append(...nodes);
  activateScripts(holder);
  const inserted = Array.from(holder.childNodes);
  parent.append(...inserted);
  return () => {
    for (const n of inserted) n.parentNode?.removeChild(n);
  };
}

interface MathJaxGlobal {
  startup?: { promise?: Promise<void> };
  typesetPromise?: (elements?: Element[]) => Promise<void>;
}

/**
 * `:stem:`: MathJax 3 from /vendor/mathjax (never a CDN), configured like the converter configures it (LaTeX
 * between \(…\) and \[…\], AsciiMath between \$…\$, equation numbers per :eqnums:). Resolves when the slides
 * are typeset.
 */
export async function typesetMath(root: HTMLElement, math: NonNullable<DeckLook["math"]>): Promise<void> {
  const w = window as unknown as { MathJax?: MathJaxGlobal | Record<string, unknown> };
  if (!(w.MathJax as MathJaxGlobal | undefined)?.typesetPromise) {
    w.MathJax = {
      tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: false, tags: math.eqnums },
      options: { ignoreHtmlClass: "nostem|nolatexmath" },
      asciimath: { delimiters: [["\\$", "\\$"]] },
      loader: { load: ["input/asciimath", "output/chtml", "ui/menu"] },
      // Typeset when asked (below), once the slides are there.
      startup: { typeset: false },
      chtml: { fontURL: "/vendor/mathjax/es5/output/chtml/fonts/woff-v2" },
    };
    await new Promise<void>((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/vendor/mathjax/es5/tex-mml-chtml.js";
      script.async = true;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error("MathJax could not be loaded"));
      document.head.append(script);
    });
  }
  const mj = w.MathJax as MathJaxGlobal;
  await mj.startup?.promise;
  await mj.typesetPromise?.([root]);
}

/** Light or dark, from the background colour the theme gives the page (for a custom theme). */
export function measureTone(): "light" | "dark" {
  const probe = document.createElement("div");
  probe.style.cssText = "position:absolute;visibility:hidden;background:var(--r-background-color, #fff)";
  document.body.append(probe);
  const bg = getComputedStyle(probe).backgroundColor;
  probe.remove();
  const [r, g, b] = (bg.match(/[\d.]+/g) ?? ["255", "255", "255"]).map(Number);
  // relative luminance (sRGB, approximately)
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128 ? "dark" : "light";
}

/** Wait until the deck's stylesheets (rendered as <link precedence>) have loaded, so measured colours are the theme's. */
export async function stylesheetsLoaded(hrefs: string[], timeoutMs = 10_000): Promise<void> {
  const links = Array.from(document.querySelectorAll<HTMLLinkElement>('link[rel="stylesheet"]')).filter((l) =>
    hrefs.some((h) => l.getAttribute("href") === h),
  );
  await Promise.race([
    Promise.all(
      links.map((l) =>
        l.sheet
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              l.addEventListener("load", () => resolve(), { once: true });
              l.addEventListener("error", () => resolve(), { once: true });
            }),
      ),
    ),
    new Promise<void>((resolve) => setTimeout(resolve, timeoutMs)),
  ]);
}
