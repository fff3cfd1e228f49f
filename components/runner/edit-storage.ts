/**
 * A student's edits, kept in the browser per deck and block so they survive a reload.
 * Keyed by the author's code too: when the author changes the example, old edits do not
 * silently shadow the new version.
 */
import type { FileState } from "./editor-controller";

export interface SavedEdit {
  state: FileState;
  authorHash: string;
}

const PREFIX = "osbe:edit:";

function key(deck: string, blockId: string): string {
  return `${PREFIX}${deck}:${blockId}`;
}

/** A short, stable fingerprint of the author's version (FNV-1a; no crypto needed here). */
export function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

export function loadEdit(deck: string, blockId: string, authorHash: string): SavedEdit | null {
  try {
    const raw = localStorage.getItem(key(deck, blockId));
    if (!raw) return null;
    const saved = JSON.parse(raw) as SavedEdit;
    return saved.authorHash === authorHash && typeof saved.state?.text === "string" ? saved : null;
  } catch {
    return null;
  }
}

export function saveEdit(deck: string, blockId: string, edit: SavedEdit): void {
  try {
    localStorage.setItem(key(deck, blockId), JSON.stringify(edit));
  } catch {
    // Storage full or disabled (private mode): the edit lives until the page closes.
  }
  announce(deck);
}

export function clearEdit(deck: string, blockId: string): void {
  try {
    localStorage.removeItem(key(deck, blockId));
  } catch {
    /* as above */
  }
  announce(deck);
}

/** The examples (block ids, without the file part) of a deck that hold an edit. */
export function editedExamples(deck: string): Set<string> {
  const prefix = key(deck, "");
  const ids = new Set<string>();
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      // Stored per file: `<block id>/<file name>`.
      if (k?.startsWith(prefix)) ids.add(k.slice(prefix.length).replace(/\/.*$/, ""));
    }
  } catch {
    /* storage disabled: nothing saved */
  }
  return ids;
}

/** Forgets every edit of a deck; the deck's runners hear it and show the author's code again. */
export function clearDeckEdits(deck: string): void {
  const prefix = key(deck, "");
  try {
    const keys: string[] = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (k?.startsWith(prefix)) keys.push(k);
    }
    for (const k of keys) localStorage.removeItem(k);
  } catch {
    /* as above */
  }
  window.dispatchEvent(new CustomEvent<string>(RESET_ALL_EVENT, { detail: deck }));
  announce(deck);
}

/** Window events: a deck's edits changed (detail: the deck), a deck's edits were all reset. */
export const EDITS_CHANGED_EVENT = "osbe:edits-changed";
export const RESET_ALL_EVENT = "osbe:reset-all";

function announce(deck: string): void {
  if (typeof window !== "undefined") window.dispatchEvent(new CustomEvent<string>(EDITS_CHANGED_EVENT, { detail: deck }));
}
