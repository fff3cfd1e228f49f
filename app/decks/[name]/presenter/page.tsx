import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { cache } from "react";
import PresenterView from "@/components/live/PresenterView";
import DeckProblems from "@/components/deck/DeckProblems";
import { loadDeck } from "@/lib/deck/server";
import { isBroken } from "@/lib/deck/types";

export const dynamic = "force-dynamic";

type Props = { params: Promise<{ name: string }> };

const load = cache((name: string) => loadDeck(name));

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  const deck = await load((await params).name);
  return { title: deck ? `Presenter · ${deck.title} · OSByExample` : "Lecture not found · OSByExample" };
}

/** The lecturer's presenter view of a deck: current and next slide, notes, timer, the live session. */
export default async function PresenterPage({ params }: Props) {
  const { name } = await params;
  const deck = await load(name);
  if (!deck) notFound();
  if (isBroken(deck)) return <DeckProblems name={deck.name} title={deck.title} problems={deck.problems} />;
  return (
    <>
      {/* The deck's stylesheets, as on the deck page. */}
      {deck.look.stylesheets.map((href) => (
        <link key={href} rel="stylesheet" href={href} precedence="deck" />
      ))}
      <PresenterView key={deck.contentHash} deck={deck.name} title={deck.title} slidesHtml={deck.slidesHtml} options={deck.reveal} look={deck.look} />
    </>
  );
}
