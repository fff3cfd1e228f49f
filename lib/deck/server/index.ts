/**
 * NODE ONLY: the deck loader. Import it from server components, route handlers and scripts — never from a
 * client component (it reads the file system and runs Asciidoctor.js). Browser-safe types and helpers are
 * in lib/deck/types.ts and lib/deck/reveal-options.ts.
 */
export { contentDir, listDeckNames, deckDir, loadDeck, loadDeckFolder, listDecks, clearDeckCache, showDeckWarnings } from "./decks";
export { convertDeck, conversionCount, INDEX_FILE } from "./convert";
export { deckExtensions, type DeckExtension, type DeckContext } from "./extensions";
export { fileResponse, resolveCourseFile, resolveDeckAsset, resolveVendorFile, withoutRemoteImports } from "./assets";
