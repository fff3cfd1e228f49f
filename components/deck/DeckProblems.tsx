/**
 * A broken deck, explained: each problem as `deck/file.adoc:LINE: message`, the format of `npm run check`.
 * Plain markup, rendered on the server (no client JavaScript needed).
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

export default function DeckProblems({ name, title, problems }: { name: string; title: string; problems: DeckProblem[] }) {
  return (
    <main className="site deck-broken" data-deck={name}>
      <p className="crumbs">
        <a href="/">← All lectures</a>
      </p>
      <h1>
        {title} <span className="badge badge-broken">broken</span>
      </h1>
      <p>
        The deck <code>{name}</code> cannot be presented: Asciidoctor reported {problems.length === 1 ? "a problem" : `${problems.length} problems`}.
        Fix {problems.length === 1 ? "it" : "them"} in the file and line named below (<code>npm run check</code> lists the same).
      </p>
      <ProblemList problems={problems} />
    </main>
  );
}
