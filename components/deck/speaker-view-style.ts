/**
 * reveal.js's speaker view (notes plugin) writes its own page into a popup; its "Upcoming" label
 * sits over the top-left corner of the next slide's preview, where our slides have their heading.
 * The plugin has no option for its page's style, so the popup it opens gets a few rules more:
 * the label above the preview instead of over it.
 *
 * The popup (about:blank) keeps this page's Content-Security-Policy, which runs only scripts with the
 * page's nonce: the page the plugin writes into it gets the nonce on its script tags.
 */
import { pageNonce, withNonce } from "./csp-nonce";

const SPEAKER_WINDOW = "reveal.js - Notes";
const CSS = `
#upcoming-slide { padding-top: 46px; }
#upcoming-slide .label { top: 6px; left: 6px; }
`;

/** Styles the speaker view popups opened from this page; returns the function that stops it. */
export function styleSpeakerView(): () => void {
  const open = window.open;
  const patched: typeof window.open = function (this: Window, ...args) {
    const popup = open.apply(this, args);
    if (popup && args[1] === SPEAKER_WINDOW) {
      const nonce = pageNonce();
      if (nonce) {
        try {
          const doc = popup.document;
          const write = doc.write.bind(doc);
          doc.write = (...html: string[]) => write(...html.map((part) => withNonce(part, nonce)));
        } catch {
          /* another origin: not ours to write */
        }
      }
      // The plugin writes the speaker view's page right after opening the window.
      setTimeout(() => {
        try {
          const doc = popup.document;
          if (doc.getElementById("osbe-speaker-style")) return;
          const style = doc.createElement("style");
          style.id = "osbe-speaker-style";
          style.textContent = CSS;
          (doc.head ?? doc.documentElement).appendChild(style);
        } catch {
          /* another origin: leave the view as it is */
        }
      }, 0);
    }
    return popup;
  };
  window.open = patched;
  return () => {
    if (window.open === patched) window.open = open;
  };
}
