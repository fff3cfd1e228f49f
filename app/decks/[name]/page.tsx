import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { cache } from "react";
import DeckView from "@/components/deck/DeckView";
import DeckProblems from "@/components/deck/DeckProblems";
import DevReload from "@/components/deck/DevReload";
import { loadDeck } from "@/lib/deck/server";

// The deck comes from CONTENT_DIR at run time: never prerendered, but conversion is cached by content.
export const dynamic = "force-dynamic";

type Props = { params: Promise<{ name: string }> };

/** One load per request, shared by the metadata and the page. */
const load = cache((name: string) => loadDeck(name));

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  const deck = await load((await params).name);
  if (!deck) return { title: "Lecture not found · OSByExample" };
  return { title: `${deck.title} · OSByExample`, description: deck.subtitle ?? deck.description };
}

export default async function DeckPage({ params }: Props) {
  const { name } = await params;
  const deck = await load(name);
  if (!deck) notFound();
  const dev = process.env.NODE_ENV === "development";
  return (
    <>
      {deck.problems.length > 0 ? (
        <DeckProblems name={deck.name} title={deck.title} problems={deck.problems} />
      ) : (
        <DeckView key={deck.contentHash} deck={deck.name} slidesHtml={deck.slidesHtml} options={deck.reveal} />
      )}
      {dev && <DevReload deck={deck.name} version={deck.contentHash} />}
    </>
  );
}
