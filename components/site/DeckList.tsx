/**
 * The course's lectures as cards: title, subtitle or description, slide count. Broken decks (an error) show
 * their problems; decks that render despite warnings show them too when warnings are shown (npm run dev).
 */
import type { DeckSummary } from "@/lib/deck/types";
import { isBroken, warningsOf } from "@/lib/deck/types";
import { ProblemList, warningSummary } from "@/components/deck/DeckProblems";

export default function DeckList({ decks, showWarnings = false }: { decks: DeckSummary[]; showWarnings?: boolean }) {
  return (
    <ol className="deck-list">
      {decks.map((d) => {
        const broken = isBroken(d);
        const warnings = showWarnings && !broken ? warningsOf(d) : [];
        const href = `/decks/${encodeURIComponent(d.name)}`;
        return (
          <li key={d.name} className={`deck-card${broken ? " is-broken" : ""}${warnings.length ? " has-warnings" : ""}`} data-deck={d.name}>
            <h2>
              <a href={href}>{d.title}</a>
              {broken && <span className="badge badge-broken">broken</span>}
              {warnings.length > 0 && <span className="badge badge-warning">{warningSummary(warnings)}</span>}
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
            {(broken || warnings.length > 0) && <ProblemList problems={broken ? d.problems : warnings} />}
          </li>
        );
      })}
    </ol>
  );
}
