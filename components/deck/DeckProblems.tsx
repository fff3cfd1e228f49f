/**
 * A deck's problems, each as `deck/file.adoc:LINE: message` (the format of `npm run check`): a broken deck's
 * error page, and the warnings panel over a deck that renders despite warnings. Plain markup, rendered on the
 * server (no client JavaScript needed).
 */
import type { DeckProblem } from "@/lib/deck/types";
import { formatProblem } from "@/lib/deck/types";

export function ProblemList({ problems }: { problems: DeckProblem[] }) {
  return (
    <ul className="problems">
      {problems.map((p, i) => (
        <li key={i} className={`problem problem-${p.severity}`}>
          <code>{formatProblem(p)}</code>
        </li>
      ))}
    </ul>
  );
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "2 warnings, 1 note" */
export function warningSummary(problems: DeckProblem[]): string {
  const warnings = problems.filter((p) => p.severity === "warning").length;
  const notes = problems.filter((p) => p.severity === "info").length;
  return [warnings && count(warnings, "warning"), notes && count(notes, "note")].filter(Boolean).join(", ");
}

export default function DeckProblems({ name, title, problems }: { name: string; title: string; problems: DeckProblem[] }) {
  const errors = problems.filter((p) => p.severity === "error").length;
  return (
    <main className="site deck-broken" data-deck={name}>
      <p className="crumbs">
        <a href="/">← All lectures</a>
      </p>
      <h1>
        {title} <span className="badge badge-broken">broken</span>
      </h1>
      <p>
        The deck <code>{name}</code> cannot be presented: Asciidoctor reported {errors === 1 ? "an error" : `${errors} errors`}
        {problems.length > errors ? ` (and ${warningSummary(problems)})` : ""}. Fix {errors === 1 ? "it" : "them"} in the file and line named
        below (<code>npm run check</code> lists the same).
      </p>
      <ProblemList problems={problems} />
    </main>
  );
}

/**
 * Over a deck that renders despite warnings (shown in `npm run dev`, or with DECK_WARNINGS=show): a small
 * panel in the top-left corner, closed by default, that lists them with file and line.
 */
export function DeckWarnings({ problems }: { problems: DeckProblem[] }) {
  const hasWarnings = problems.some((p) => p.severity === "warning");
  return (
    <details className={`deck-warnings${hasWarnings ? " has-warnings" : ""}`} data-count={problems.length}>
      <summary title="npm run check lists the same">{warningSummary(problems)}</summary>
      <ProblemList problems={problems} />
    </details>
  );
}
