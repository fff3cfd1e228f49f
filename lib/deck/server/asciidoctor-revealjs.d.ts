/** `@asciidoctor/reveal.js` ships no types: a CommonJS facade that registers the `revealjs` backend. */
declare module "@asciidoctor/reveal.js" {
  export function register(): void;
  export function getVersion(): string;
}
