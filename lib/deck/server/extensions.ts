/**
 * NODE ONLY. Asciidoctor extensions applied to every deck.
 *
 * Each conversion gets a fresh extension registry (`Extensions.create()`), and every entry of
 * `deckExtensions` registers its processors into it. A later issue adds the runnable-block extension here:
 * a block processor or tree processor that finds `[source%run,c]` listings and replaces them with a
 * placeholder carrying the code and its settings, e.g.
 *
 *   deckExtensions.push({
 *     name: "runnable-blocks",
 *     register(registry, ctx) {
 *       registry.treeProcessor(function () {
 *         this.process((doc) => { ...doc.findBy({ context: "listing" })... });
 *       });
 *     },
 *   });
 *
 * Problems an extension finds should be logged through Asciidoctor's logger (`node.getLogger().error(…)`,
 * or `ctx.report(…)`) so they show up with file and line like any other deck problem.
 */
import type { Extensions } from "@asciidoctor/core";
import type { DeckProblem } from "../types";
import { runnableExtension } from "./runnable";

export interface DeckContext {
  /** Folder name of the deck (URL segment). */
  name: string;
  /** Absolute deck folder (Asciidoctor's base_dir and include jail). */
  dir: string;
  /** URL prefix under which the deck's files are served, e.g. `/decks/processes/assets/`. */
  assetBase: string;
  /** Report a problem that is not an Asciidoctor log message. */
  report(problem: Omit<DeckProblem, "relFile"> & { relFile?: string }): void;
}

export interface DeckExtension {
  name: string;
  register(registry: Extensions.Registry, ctx: DeckContext): void;
}

/** The extensions every deck is converted with. */
export const deckExtensions: DeckExtension[] = [
  // `[source%run,c]` / `[source%run,rust]` → runner placeholders (./runnable.ts, docs/authoring.md).
  runnableExtension(),
];
