/**
 * What a runner and the live lecture tell each other (kept out of CodeRunner but for a few calls):
 * a lecturer's edits and runs go to the room; a student's copy of the lecturer's version goes into
 * the student's editors, after their own version is put aside so it can be restored.
 */
import type { LiveFile, LiveRunTag } from "../../lib/protocol";
import type { LiveClient } from "./live-client";

export interface RunnerEditors {
  files(): LiveFile[];
  setFiles(files: LiveFile[]): void;
}

export interface RunnerLiveLink {
  /** The runner's code changed. */
  edited(): void;
  /** The tag for a run about to start: set when this page is the lecturer's in a live session. */
  runTag(): LiveRunTag | undefined;
  /** The runner's editors exist. */
  attach(editors: RunnerEditors): void;
}

const restoreKey = (deck: string, block: string) => `osbe:live-restore:${deck}:${block}`;

export class RunnerLink implements RunnerLiveLink {
  private editors: RunnerEditors | null = null;
  /** Set while the lecturer's own version from another device is put in: that is no new edit to publish. */
  private applying = false;

  constructor(
    private readonly client: LiveClient,
    private readonly block: string,
  ) {}

  edited(): void {
    if (this.applying) return;
    if (this.client.isLecturer && this.client.live && this.editors) this.client.publishCode(this.block, this.editors.files());
  }

  runTag(): LiveRunTag | undefined {
    if (!this.client.isLecturer || !this.client.live) return undefined;
    // The room sees the code that runs, also if it was never edited.
    if (this.editors) this.client.publishCode(this.block, this.editors.files());
    return { deck: this.client.deck, block: this.block };
  }

  attach(editors: RunnerEditors): void {
    this.editors = editors;
  }

  get ready(): boolean {
    return this.editors !== null;
  }

  /**
   * On the lecturer's other devices (the projector while the laptop types): the lecturer's version
   * goes into the editor itself, when it differs.
   */
  applyOwn(files: LiveFile[]): void {
    if (!this.editors || JSON.stringify(this.editors.files()) === JSON.stringify(files)) return;
    this.applying = true;
    try {
      this.editors.setFiles(files);
    } finally {
      this.applying = false;
    }
  }

  /** Copies the lecturer's version into the student's editors; the student's own is kept to restore. */
  copyIn(files: LiveFile[]): void {
    if (!this.editors) return;
    try {
      localStorage.setItem(restoreKey(this.client.deck, this.block), JSON.stringify(this.editors.files()));
    } catch {
      /* storage off: the copy still happens, undo in the editor still works */
    }
    this.editors.setFiles(files);
  }

  /** The student's version from before the last copy, if any. */
  saved(): LiveFile[] | null {
    try {
      const raw = localStorage.getItem(restoreKey(this.client.deck, this.block));
      return raw ? (JSON.parse(raw) as LiveFile[]) : null;
    } catch {
      return null;
    }
  }

  restore(): void {
    const saved = this.saved();
    if (!saved || !this.editors) return;
    this.editors.setFiles(saved);
    try {
      localStorage.removeItem(restoreKey(this.client.deck, this.block));
    } catch {
      /* as above */
    }
  }
}
