/** The course's lectures as cards: title, subtitle or description, slide count; broken decks with their problems. */
import type { DeckSummary } from "@/lib/deck/types";
import { ProblemList } from "@/components/deck/DeckProblems";

export default function DeckList({ decks }: { decks: DeckSummary[] }) {
  return (
    <ol className="deck-list">
      {decks.map((d) => {
        const broken = d.problems.length > 0;
        const href = `/decks/${encodeURIComponent(d.name)}`;
        return (
          <li key={d.name} className={`deck-card${broken ? " is-broken" : ""}`} data-deck={d.name}>
            <h2>
              <a href={href}>{d.title}</a>
              {broken && <span className="badge badge-broken">broken</span>}
            </h2>
            {d.subtitle && <p className="subtitle">{d.subtitle}</p>}
            {d.description && <p className="description">{d.description}</p>}
            <p className="meta">
              <span className="slide-count">
                {d.slideCount} {d.slideCount === 1 ? "slide" : "slides"}
              </span>
              {!broken && (
                <>
                  {" · "}
                  <a href={href}>Present</a>
                  {" · "}
                  <a href={`${href}?view=scroll`}>Read</a>
                  {" · "}
                  <a href={`${href}?print-pdf`}>Print</a>
                </>
              )}
            </p>
            {broken && <ProblemList problems={d.problems} />}
          </li>
        );
      })}
    </ol>
  );
}
