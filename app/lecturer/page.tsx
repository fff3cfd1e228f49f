import { listDecks } from "@/lib/deck/server";
import LecturerHome from "@/components/live/LecturerHome";

export const dynamic = "force-dynamic";
export const metadata = { title: "Lecturer · OSByExample" };

/** The lecturer's view: sign in, then start a live session on any deck from its presenter view. */
export default async function LecturerPage() {
  const decks = (await listDecks()).filter((d) => d.problems.length === 0).map((d) => ({ name: d.name, title: d.title }));
  return (
    <main className="site">
      <header className="site-header">
        <h1>Lecturer</h1>
        <p className="lede">
          Present a deck live: the room follows your slides, and your code and its output appear on every screen.
        </p>
      </header>
      <LecturerHome decks={decks} />
    </main>
  );
}
