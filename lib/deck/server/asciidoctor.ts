/**
 * NODE ONLY. The one Asciidoctor.js processor of this process, with the reveal.js converter registered.
 *
 * `@asciidoctor/reveal.js` attaches itself to the global `Opal` that `@asciidoctor/core` creates, so it is
 * loaded only after the core has been instantiated. Both stay external to Next's bundles
 * (next.config.ts `serverExternalPackages`).
 */
import type { Asciidoctor } from "@asciidoctor/core";
import { installReadHooks } from "./course-files";

const KEY = Symbol.for("osbyexample.asciidoctor");
type Holder = { [KEY]?: Promise<Asciidoctor> };

async function create(): Promise<Asciidoctor> {
  const core = await import("@asciidoctor/core");
  const factory = (core as unknown as { default: () => Asciidoctor }).default;
  const processor = factory();
  const revealjs = await import("@asciidoctor/reveal.js");
  const facade = (revealjs as unknown as { default?: { register(): void }; register?: () => void });
  (facade.register ? facade : facade.default!).register!();
  installReadHooks((globalThis as { Opal?: unknown }).Opal);
  return processor;
}

/** The shared processor (created once per process, also across Next's separately bundled routes). */
export function getAsciidoctor(): Promise<Asciidoctor> {
  const holder = globalThis as Holder;
  holder[KEY] ??= create().catch((err) => {
    delete holder[KEY];
    throw err;
  });
  return holder[KEY]!;
}
