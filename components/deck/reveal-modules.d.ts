/** Just enough typing for the parts of reveal.js 5 the deck view uses (reveal.js ships no types). */
declare module "reveal.js" {
  export interface RevealApi {
    initialize(): Promise<void>;
    destroy(): void;
    layout(): void;
    sync(): void;
    slide(h?: number, v?: number, f?: number): void;
    getIndices(): { h: number; v?: number; f?: number };
    on(event: string, cb: (e: unknown) => void): void;
    off(event: string, cb: (e: unknown) => void): void;
    isScrollView(): boolean;
    getScale(): number;
    isPrintView(): boolean;
    isOverview(): boolean;
    getConfig(): Record<string, unknown>;
    getPlugin(id: string): unknown;
    /** Adds a line to the keyboard help ("?"); the key itself is handled elsewhere. */
    registerKeyboardShortcut(key: string, description: string): void;
    next(): void;
    getCurrentSlide(): HTMLElement | undefined;
    getSlideNotes(slide?: HTMLElement): string | null;
    addKeyBinding(binding: { keyCode: number; key: string; description: string }, callback: () => void): void;
    removeKeyBinding(keyCode: number): void;
  }
  const Reveal: { new (element: HTMLElement, options?: Record<string, unknown>): RevealApi };
  export default Reveal;
}
declare module "reveal.js/plugin/notes/notes.esm.js" {
  const plugin: () => unknown;
  export default plugin;
}
declare module "reveal.js/plugin/highlight/highlight.esm.js" {
  const plugin: () => unknown;
  export default plugin;
}
declare module "reveal.js/plugin/zoom/zoom.esm.js" {
  const plugin: () => unknown;
  export default plugin;
}
declare module "reveal.js/plugin/search/search.esm.js" {
  const plugin: () => unknown;
  export default plugin;
}
