/**
 * The bwrap driver's mount helper (sandbox/mount-helper.ts): the real helper process mounting real
 * tmpfs and making real cgroups, as the sandboxes use it. Needs root, like the sandbox.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CgroupSet, CONTROLLERS } from "../../sandbox/cgroup";
import { buildMountHelper, HelperMounter } from "../../sandbox/mount-helper";
import { Workspace } from "../../sandbox/workspace";

const isMounted = (dir: string) =>
  fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === dir);

describe("mount helper", () => {
  let base = "";
  let root = "";
  let mounter: HelperMounter;

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), "mount-helper-test-"));
    root = path.join(base, "root");
    fs.mkdirSync(root);
    mounter = new HelperMounter(await buildMountHelper(path.join(base, "helpers")), root, "osbyexample");
  }, 60_000);

  afterAll(() => {
    mounter.close();
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const target = line.split(" ")[4];
      if (target?.startsWith(`${base}/`)) throw new Error(`left mounted: ${target}`);
    }
    fs.rmSync(base, { recursive: true, force: true });
  });

  it("mounts a size-limited workspace and unmounts it; a workspace through it works as with mount(8)", async () => {
    const workspace = new Workspace(path.join(root, "ws"), mounter);
    await workspace.create(1024 * 1024, 65534, 65534, [{ name: "main.c", content: "int main(void) { return 0; }\n" }]);
    expect(isMounted(workspace.root)).toBe(true);
    expect(fs.statSync(workspace.work).uid).toBe(65534);
    expect(fs.readFileSync(path.join(workspace.work, "main.c"), "utf8")).toContain("main");
    // The size limit holds: 2 MiB do not fit in 1 MiB.
    expect(() => fs.writeFileSync(path.join(workspace.tmp, "big"), Buffer.alloc(2 * 1024 * 1024))).toThrow(/ENOSPC/);
    await workspace.dispose();
    expect(isMounted(workspace.root)).toBe(false);
    expect(fs.existsSync(workspace.dir)).toBe(false);
  }, 60_000);

  it("refuses folders outside its root, says EBUSY for a mount in use, and detaches on request", async () => {
    await expect(mounter.mount(base, 1024 * 1024)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(mounter.mount(`${root}/../x`, 1024 * 1024)).rejects.toMatchObject({ code: "EINVAL" });
    const dir = path.join(root, "busy");
    fs.mkdirSync(dir);
    await mounter.mount(dir, 1024 * 1024);
    const fd = fs.openSync(path.join(dir, "open"), "w");
    try {
      await expect(mounter.unmount(dir, false)).rejects.toMatchObject({ code: "EBUSY" });
      await mounter.unmount(dir, true);
      expect(isMounted(dir)).toBe(false);
    } finally {
      fs.closeSync(fd);
    }
  }, 60_000);

  it("makes a sandbox's cgroups with their limits and removes them; nothing outside the engine's parent", async () => {
    const cgroup = new CgroupSet("osbyexample", `mount-helper-test-${process.pid}`, mounter);
    try {
      await cgroup.create({ memoryBytes: 64 * 1024 * 1024, processes: 7, cpuShares: 300 });
      for (const c of CONTROLLERS) expect(fs.existsSync(cgroup.dirs[c])).toBe(true);
      expect(fs.readFileSync(path.join(cgroup.dirs.memory, "memory.limit_in_bytes"), "utf8").trim()).toBe(String(64 * 1024 * 1024));
      expect(fs.readFileSync(path.join(cgroup.dirs.pids, "pids.max"), "utf8").trim()).toBe("7");
      expect(fs.readFileSync(path.join(cgroup.dirs.cpu, "cpu.shares"), "utf8").trim()).toBe("300");
    } finally {
      await cgroup.remove();
    }
    for (const c of CONTROLLERS) expect(fs.existsSync(cgroup.dirs[c])).toBe(false);
    const [outside, parentItself, dotDot] = await mounter.run([
      { op: "mkdir", path: "/sys/fs/cgroup/memory/elsewhere-test" },
      { op: "rmdir", path: "/sys/fs/cgroup/memory/osbyexample" },
      { op: "write", path: "/sys/fs/cgroup/memory/osbyexample/../memory.limit_in_bytes", value: "1" },
    ]);
    for (const error of [outside, parentItself, dotDot]) expect(error).toMatchObject({ code: "EINVAL" });
    expect(fs.existsSync("/sys/fs/cgroup/memory/elsewhere-test")).toBe(false);
  }, 60_000);

  it("starts again after its process died", async () => {
    const dir = path.join(root, "again");
    fs.mkdirSync(dir);
    await mounter.mount(dir, 1024 * 1024);
    const helpers = fs
      .readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(path.join(base, "helpers"));
        } catch {
          return false;
        }
      });
    expect(helpers.length).toBe(1);
    process.kill(Number(helpers[0]), "SIGKILL");
    // The next request may meet the dying process (an error) or a new one; the one after works.
    await mounter.unmount(dir, false).catch(() => mounter.unmount(dir, false));
    expect(isMounted(dir)).toBe(false);
  }, 60_000);
});
