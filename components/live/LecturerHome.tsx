"use client";
/** Sign-in with the lecturer token, then the decks to present; sign-out revokes the session. */
import { useEffect, useState } from "react";
import "./live.css";

interface DeckLink {
  name: string;
  title: string;
}

async function post(path: string, body?: unknown): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

export default function LecturerHome({ decks }: { decks: DeckLink[] }) {
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    fetch("/api/lecturer/me")
      .then((r) => r.json())
      .then((b: { signedIn: boolean }) => setSignedIn(b.signedIn))
      .catch(() => setError("The server cannot be reached."));
  }, []);

  const signIn = async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await post("/api/lecturer/sign-in", { token });
      if (res.status === 200) {
        setSignedIn(true);
        setToken("");
      } else setError(res.body.error ?? `sign-in failed (HTTP ${res.status})`);
    } catch {
      setError("The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  };

  const signOut = async () => {
    await post("/api/lecturer/sign-out").catch(() => {});
    setSignedIn(false);
  };

  if (signedIn === null) return <p>…</p>;
  if (!signedIn) {
    return (
      <form
        className="lecturer-sign-in"
        onSubmit={(e) => {
          e.preventDefault();
          void signIn();
        }}
      >
        <label>
          Lecturer token
          <input
            type="password"
            autoComplete="current-password"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            aria-describedby="token-help"
            required
          />
        </label>
        <button type="submit" disabled={busy || token.length === 0}>
          Sign in
        </button>
        <p id="token-help" className="hint">
          The operator sets it as <code>LECTURER_TOKEN</code>; without it, <code>npm start</code> prints one.
        </p>
        {error && (
          <p className="lecturer-error" role="alert">
            {error}
          </p>
        )}
      </form>
    );
  }
  return (
    <section className="lecturer-decks">
      <p>
        Signed in as the lecturer.{" "}
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </p>
      <p className="hint">
        Open a deck&apos;s presenter view on your laptop or tablet and start the live session there; show the deck itself on
        the projector (it follows you too).
      </p>
      <ol className="deck-list">
        {decks.map((d) => (
          <li key={d.name} className="deck-card" data-deck={d.name}>
            <h2>{d.title}</h2>
            <p className="meta">
              <a href={`/decks/${encodeURIComponent(d.name)}/presenter`}>Presenter view</a> ·{" "}
              <a href={`/decks/${encodeURIComponent(d.name)}`}>Projector</a>
            </p>
          </li>
        ))}
      </ol>
    </section>
  );
}
