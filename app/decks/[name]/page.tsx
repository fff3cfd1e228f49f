import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { cache } from "react";
import DeckView from "@/components/deck/DeckView";
import DeckProblems, { DeckWarnings } from "@/components/deck/DeckProblems";
import DevReload from "@/components/deck/DevReload";
import { loadDeck, showDeckWarnings } from "@/lib/deck/server";
import { isBroken, warningsOf } from "@/lib/deck/types";

// The deck comes from CONTENT_DIR at run time: never prerendered, but conversion is cached by content.
export const dynamic = "force-dynamic";

type Props = { params: Promise<{ name: string }> };

/** One load per request, shared by the metadata and the page. */
const load = cache((name: string) => loadDeck(name));

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  const deck = await load((await params).name);
  if (!deck) return { title: "Lecture not found · OSByExample" };
  const favicon = deck.look.favicon;
  return {
    title: `${deck.title} · OSByExample`,
    description: deck.subtitle ?? deck.description,
    // :favicon: — the deck's own icon instead of the site's
    ...(favicon ? { icons: { icon: [{ url: favicon.href, ...(favicon.type ? { type: favicon.type } : {}) }] } } : {}),
  };
}

export default async function DeckPage({ params }: Props) {
  const { name } = await params;
  const deck = await load(name);
  if (!deck) notFound();
  const dev = process.env.NODE_ENV === "development";
  const warnings = warningsOf(deck);
  return (
    <>
      {isBroken(deck) ? (
        <DeckProblems name={deck.name} title={deck.title} problems={deck.problems} />
      ) : (
        <>
          {/* The deck's stylesheets after reveal.css, in the converter's order: theme, its CSS, course theme, code, custom CSS. */}
          {deck.look.stylesheets.map((href) => (
            <link key={href} rel="stylesheet" href={href} precedence="deck" />
          ))}
          <DeckView key={deck.contentHash} deck={deck.name} slidesHtml={deck.slidesHtml} options={deck.reveal} look={deck.look} />
          {warnings.length > 0 && showDeckWarnings() && <DeckWarnings problems={warnings} />}
        </>
      )}
      {dev && <DevReload deck={deck.name} version={deck.contentHash} />}
    </>
  );
}
