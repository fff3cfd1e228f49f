import { contentDir, listDecks, showDeckWarnings } from "@/lib/deck/server";
import DeckList from "@/components/site/DeckList";

// The course is read from CONTENT_DIR at run time (conversion cached by content).
export const dynamic = "force-dynamic";

export default async function Home() {
  const decks = await listDecks();
  return (
    <main className="site">
      <header className="site-header">
        <h1>OSByExample</h1>
        <p className="lede">Operating systems, lecture by lecture — slides whose code examples you can edit and run where they stand.</p>
      </header>
      {decks.length === 0 ? (
        <p className="empty">
          No lectures found in <code>{contentDir()}</code>. Each lecture is a folder with an <code>index.adoc</code>.
        </p>
      ) : (
        <DeckList decks={decks} showWarnings={showDeckWarnings()} />
      )}
    </main>
  );
}
