/**
 * NODE ONLY, development only. One recursive fs.watch on the content folder, shared by every open deck page
 * (through /api/dev/deck-events). A change under `<content>/<deck>/…` is announced as that deck, debounced
 * so an editor's save (write + rename + chmod) is one event.
 */
import fs from "node:fs";
import { contentDir } from "./decks";

export type DeckChangeListener = (deck: string) => void;

interface WatchState {
  watcher: fs.FSWatcher | null;
  dir: string;
  listeners: Set<DeckChangeListener>;
  timers: Map<string, NodeJS.Timeout>;
}
const KEY = Symbol.for("osbyexample.deck.watch");
const DEBOUNCE_MS = 120;

function state(): WatchState {
  const g = globalThis as { [KEY]?: WatchState };
  g[KEY] ??= { watcher: null, dir: "", listeners: new Set(), timers: new Map() };
  return g[KEY];
}

function announce(s: WatchState, deck: string): void {
  clearTimeout(s.timers.get(deck));
  s.timers.set(
    deck,
    setTimeout(() => {
      s.timers.delete(deck);
      for (const l of s.listeners) l(deck);
    }, DEBOUNCE_MS),
  );
}

/** Call `listener(deckName)` whenever a deck's files change ("*" when the deck is unknown). Returns unsubscribe. */
export function watchDecks(listener: DeckChangeListener, dir: string = contentDir()): () => void {
  const s = state();
  if (s.watcher && s.dir !== dir) {
    s.watcher.close();
    s.watcher = null;
  }
  if (!s.watcher) {
    s.dir = dir;
    try {
      s.watcher = fs.watch(dir, { recursive: true, persistent: false }, (_event, filename) => {
        const rel = filename ? String(filename) : "";
        const deck = rel.split(/[\\/]/)[0];
        announce(s, deck || "*");
      });
      s.watcher.on("error", (err) => {
        console.error(`deck watcher: ${err.message}`);
        s.watcher?.close();
        s.watcher = null;
      });
    } catch (err) {
      console.error(`deck watcher: cannot watch ${dir}: ${(err as Error).message}`);
    }
  }
  s.listeners.add(listener);
  return () => {
    s.listeners.delete(listener);
    if (s.listeners.size === 0 && s.watcher) {
      s.watcher.close();
      s.watcher = null;
    }
  };
}
