"use client";
/**
 * Turns the deck loader's placeholders (`<div class="runnable" data-runnable="{…}">`, which hold a
 * readable static copy of the code for readers without JavaScript and for print) into CodeRunners.
 */
import { createRoot, type Root } from "react-dom/client";
import { type RunnableBlock, RunnableBlockSchema } from "../../lib/runnable";
import LiveRunner from "../live/LiveRunner";

/** Mounts a runner into every placeholder under root; returns the function that unmounts them. */
export function mountRunners(root: HTMLElement, deck: string): () => void {
  const roots: Root[] = [];
  for (const placeholder of root.querySelectorAll<HTMLElement>(".runnable[data-runnable]")) {
    let block: RunnableBlock;
    try {
      block = RunnableBlockSchema.parse(JSON.parse(placeholder.dataset.runnable ?? ""));
    } catch (err) {
      // The static code stays readable; say why it is not runnable.
      placeholder.dataset.runnableError = String(err);
      console.error("runnable block could not be read", err);
      continue;
    }
    const reactRoot = createRoot(placeholder);
    // A runner with the live lecture's part: the lecturer's version beside the student's own.
    reactRoot.render(<LiveRunner deck={deck} block={block} />);
    roots.push(reactRoot);
  }
  // Deferred: React must not unmount roots synchronously while it is itself unmounting the deck.
  return () => setTimeout(() => {
      for (const r of roots) r.unmount();
    }, 0);
}
