"use client";
/**
 * A runnable block with its part in the live lecture. On a student's page, once the lecturer has
 * edited or run this block in the session, a second tab shows the lecturer's version and the
 * output of the lecturer's run as it streams; while the page follows (and the student is not
 * typing here) it switches to it by itself. One action copies it into the student's editor; the
 * student's own version is put aside and can be restored. The student's editor is never changed
 * otherwise. On the lecturer's page the runner publishes edits and runs instead.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import type { LiveFile, RunEvent } from "../../lib/protocol";
import type { RunnableBlock } from "../../lib/runnable";
import CodeRunner from "../runner/CodeRunner";
import { livePageAllowed } from "./live-client";
import { useLiveClient } from "./LiveLayer";
import { RunnerLink } from "./runner-link";
import "./live.css";

const MAX_CHARS = 200_000;

/** The lecturer's run as console text and a status line. */
function describeRun(events: RunEvent[]): { text: string; status: string; running: boolean } {
  let text = "";
  let status = "";
  let running = true;
  for (const e of events) {
    switch (e.type) {
      case "queued":
        status = "queued";
        break;
      case "compiling":
        status = `compiling with ${e.toolchain.name} ${e.toolchain.version}…`;
        break;
      case "diagnostics":
        for (const d of e.items) {
          if (d.severity === "error" || d.severity === "warning") text += `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message}\n`;
        }
        break;
      case "compiled":
        status = e.ok ? "compiled" : "compilation failed";
        if (e.stderr.trim()) text += e.stderr;
        break;
      case "running":
        status = "running…";
        break;
      case "stdout":
      case "stderr":
        text += e.data;
        break;
      case "exit":
        status = e.message;
        running = false;
        break;
      case "error":
        status = e.message;
        running = false;
        break;
      default:
        break;
    }
  }
  if (text.length > MAX_CHARS) text = text.slice(text.length - MAX_CHARS);
  return { text, status, running };
}

function LecturerVersion({
  files,
  events,
  canCopy,
  onCopy,
}: {
  files: LiveFile[] | undefined;
  events: RunEvent[] | undefined;
  canCopy: boolean;
  onCopy: () => void;
}) {
  const [active, setActive] = useState(0);
  const file = files?.[Math.min(active, (files?.length ?? 1) - 1)];
  const run = events ? describeRun(events) : null;
  const consoleRef = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = consoleRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [run?.text]);
  return (
    <div className="live-version" data-live-version>
      <div className="live-version-toolbar">
        {files && files.length > 1 &&
          files.map((f, i) => (
            <button key={f.name} type="button" className={i === active ? "active" : ""} onClick={() => setActive(i)}>
              {f.name}
            </button>
          ))}
        <span className="runner-spacer" />
        {files && (
          <button type="button" onClick={onCopy} disabled={!canCopy} title="Put the lecturer's code into your editor (yours can be restored)">
            Copy into my editor
          </button>
        )}
      </div>
      {file ? <pre className="live-version-code" data-live-code>{file.text}</pre> : <p className="live-version-empty">The lecturer has not changed the code.</p>}
      {run && (
        <>
          <pre className="runner-console live-version-console" ref={consoleRef} data-live-output aria-live="polite">
            {run.text}
          </pre>
          <div className="runner-status" data-live-run-status>
            {run.status}
          </div>
        </>
      )}
    </div>
  );
}

export default function LiveRunner({ deck, block }: { deck: string; block: RunnableBlock }) {
  const [allowed] = useState(livePageAllowed);
  const { client, snapshot } = useLiveClient(deck, allowed);
  const link = useMemo(() => (client ? new RunnerLink(client, block.id) : undefined), [client, block.id]);
  const [view, setView] = useState<"mine" | "lecturer">("mine");
  const [unseen, setUnseen] = useState(false);
  const [canRestore, setCanRestore] = useState(false);
  // The runner stays the placeholder's own child (CodeRunner relies on that); this marker finds the placeholder.
  const markerRef = useRef<HTMLSpanElement>(null);
  const placeholder = () => markerRef.current?.parentElement ?? null;

  const session = snapshot?.session ?? null;
  const student = snapshot?.role !== "lecturer";
  const files = session?.code[block.id];
  const events = session?.runs[block.id]?.events;
  const mirrored = Boolean(student && session && (files || events));

  const viewRef = useRef(view);
  viewRef.current = view;
  // New content from the lecturer for this block: show it while following, unless the student is
  // typing in this block's editor (then a mark on the tab says there is something new).
  useEffect(() => {
    if (!client) return;
    return client.on((message, snap) => {
      if (!message || ((message.type !== "live-code" && message.type !== "live-run") || message.block !== block.id)) return;
      const active = document.activeElement;
      const typingHere = Boolean(active?.closest(".ace_editor") && placeholder()?.contains(active));
      // The lecturer's other device (the projector): their code goes into the editor itself.
      if (snap.role === "lecturer") {
        if (message.type === "live-code" && !typingHere) link?.applyOwn(message.files);
        return;
      }
      if (viewRef.current === "lecturer") return;
      if (snap.following && !typingHere) setView("lecturer");
      else setUnseen(true);
    });
  }, [client, block.id, link]);

  useEffect(() => {
    if (!mirrored) setView("mine");
  }, [mirrored]);

  // The student's runner is hidden, not unmounted, while the lecturer's version shows.
  useEffect(() => {
    placeholder()?.setAttribute("data-live-view", mirrored ? view : "mine");
  }, [mirrored, view]);

  useEffect(() => {
    setCanRestore(Boolean(link?.saved()));
  }, [link]);

  // The runner keeps the link it was created with: create it once the live client is there.
  if (allowed && !client) return null;

  const show = (v: "mine" | "lecturer") => {
    setView(v);
    if (v === "lecturer") setUnseen(false);
  };

  return (
    <>
      <span ref={markerRef} hidden />
      {(mirrored || canRestore) && (
        <div className="live-runner-tabs" role="tablist" aria-label="Whose code">
          <button type="button" role="tab" aria-selected={view === "mine"} className={view === "mine" ? "active" : ""} onClick={() => show("mine")}>
            My code
          </button>
          {mirrored && (
            <button
              type="button"
              role="tab"
              aria-selected={view === "lecturer"}
              className={view === "lecturer" ? "active" : ""}
              onClick={() => show("lecturer")}
            >
              Lecturer&apos;s {unseen && <span className="live-unseen" title="new" />}
            </button>
          )}
          {canRestore && (
            <button
              type="button"
              className="live-restore"
              onClick={() => {
                link?.restore();
                setCanRestore(false);
                show("mine");
              }}
              title="Bring back the code you had before copying the lecturer's"
            >
              Restore my version
            </button>
          )}
        </div>
      )}
      <CodeRunner deck={deck} block={block} live={link} />
      {mirrored && view === "lecturer" && (
        <LecturerVersion
          files={files}
          events={events}
          canCopy={Boolean(link?.ready) && !block.readOnly}
          onCopy={() => {
            if (!files || !link) return;
            link.copyIn(files);
            setCanRestore(true);
            show("mine");
          }}
        />
      )}
    </>
  );
}
