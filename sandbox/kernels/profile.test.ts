/**
 * Kernel profiles as a lecturer writes them: extra read-only paths, boot arguments and image
 * kinds, and the clear errors a broken profile gets. Pure validation: nothing is built or booted.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type ExternalKernelConfig, extraPathsProblem, externalProfile, extraPathProblem, loadKernelProfiles, qemuArgv } from "./profile";

/** An eduOS-rs stage tag as the kernel lab's README configures it. */
const stage: ExternalKernelConfig = {
  name: "eduos-stage3",
  sourceDir: "/srv/eduos-rs-stage3",
  buildCommand: ["/usr/bin/cargo", "build", "--offline", "--target", "i686-eduos.json", "--message-format=json"],
  env: { CARGO_TARGET_I686_EDUOS_LINKER: "/usr/bin/ld" },
  extraReadOnlyPaths: ["/srv/eduos-vendor-stage3/"],
  imagePath: "target/i686-eduos/debug/eduos-rs",
  editableCrates: ["eduos-rs"],
  successExitCode: 5,
  replaceableFiles: [{ path: "src/main.rs", lesson: "the tasks" }],
};

/** The message a config fails with. */
function problem(config: unknown): string {
  try {
    externalProfile(config as ExternalKernelConfig);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the profile was accepted");
}

const option = (argv: string[], name: string) => argv[argv.indexOf(name) + 1];

describe("kernel profile: extra read-only paths", () => {
  it("keeps them, normalized, for the build sandbox (and the boot sandbox when asked)", () => {
    const profile = externalProfile({ ...stage, qemu: { extraReadOnlyPaths: ["/srv/firmware"] } });
    expect(profile.extraReadOnlyPaths).toEqual(["/srv/eduos-vendor-stage3"]);
    expect(profile.qemu.extraReadOnlyPaths).toEqual(["/srv/firmware"]);
    expect(externalProfile({ ...stage, extraReadOnlyPaths: undefined }).extraReadOnlyPaths).toEqual([]);
  });

  it("refuses relative paths, the root, the sandbox's own folders and the kernel's own folder", () => {
    expect(problem({ ...stage, extraReadOnlyPaths: ["srv/vendor"] })).toBe('kernel profile "eduos-stage3": extraReadOnlyPaths[0]: must be an absolute path');
    expect(problem({ ...stage, extraReadOnlyPaths: ["/"] })).toMatch(/extraReadOnlyPaths\[0\]: must not be \/ \(the sandbox would see the whole host\)/);
    expect(problem({ ...stage, extraReadOnlyPaths: ["/tmp/vendor"] })).toMatch(/extraReadOnlyPaths\[0\]: \/tmp\/vendor overlaps the sandbox's own \/tmp/);
    expect(problem({ ...stage, extraReadOnlyPaths: ["/usr/lib/rustlib"] })).toMatch(/overlaps the sandbox's own \/usr/);
    expect(problem({ ...stage, qemu: { extraReadOnlyPaths: ["/proc/self"] } })).toMatch(/qemu\.extraReadOnlyPaths\[0\]: .*\/proc/);
    // Inside the checkout: the run tree is mounted there (and vendored crates there need no extra path).
    expect(problem({ ...stage, extraReadOnlyPaths: ["/srv/eduos-rs-stage3/vendor"] })).toMatch(
      /extraReadOnlyPaths\[0\]: \/srv\/eduos-rs-stage3\/vendor overlaps mountPath \/srv\/eduos-rs-stage3/,
    );
    // Over it: the sandbox would see the warm tree.
    expect(problem({ ...stage, extraReadOnlyPaths: ["/srv"] })).toMatch(/\/srv overlaps mountPath/);
    expect(problem({ ...stage, mountPath: "/kernel/eduos", extraReadOnlyPaths: ["/srv"] })).toMatch(/\/srv overlaps sourceDir \/srv\/eduos-rs-stage3/);
    expect(problem({ ...stage, extraReadOnlyPaths: "/srv/vendor" })).toMatch(/extraReadOnlyPaths: /);
  });

  it("says when the sandbox user could not see a path", () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "kernel-profile-test-"));
    dirs.push(base);
    fs.chmodSync(base, 0o700); // as mkdtemp makes it, and like /root
    fs.mkdirSync(path.join(base, "vendor"));
    expect(extraPathProblem(path.join(base, "vendor"))).toMatch(new RegExp(`not visible to the sandbox user: ${base} has mode 700`));
    fs.chmodSync(base, 0o755);
    expect(extraPathProblem(path.join(base, "vendor"))).toBeUndefined();
    expect(extraPathProblem(path.join(base, "missing"))).toMatch(/missing does not exist/);
    fs.writeFileSync(path.join(base, "secret"), "");
    fs.chmodSync(path.join(base, "secret"), 0o600);
    expect(extraPathProblem(path.join(base, "secret"))).toMatch(/not readable by the sandbox user \(mode 600\)/);
    // A profile's whole list: its first problem, named with the field.
    expect(extraPathsProblem({ extraReadOnlyPaths: [base, path.join(base, "missing")], qemu: { extraReadOnlyPaths: [] } })).toMatch(
      /extraReadOnlyPaths: .*missing does not exist/,
    );
  });
});

describe("kernel profile: boot arguments and image kinds", () => {
  it("boots an elf-kernel with -kernel by default, the way the project's kernel boots", () => {
    const profile = externalProfile(stage);
    expect(profile.imageKind).toBe("elf-kernel");
    const argv = qemuArgv(profile, "/srv/eduos-rs-stage3/target/i686-eduos/debug/eduos-rs");
    expect(argv[0]).toBe("/usr/bin/qemu-system-x86_64");
    expect(option(argv, "-kernel")).toBe("/srv/eduos-rs-stage3/target/i686-eduos/debug/eduos-rs");
    expect(argv).not.toContain("-drive");
    for (const engineOption of ["-serial", "-no-reboot", "-nodefaults"]) expect(argv).toContain(engineOption);
    expect(option(argv, "-serial")).toBe("stdio");
    expect(option(argv, "-device")).toBe("isa-debug-exit,iobase=0xf4,iosize=0x04");
  });

  it("boots a raw disk image with -drive (a temporary overlay for the guest's writes), on the machine and CPU asked for", () => {
    const profile = externalProfile({
      ...stage,
      name: "eduos-ws25",
      imagePath: "target/x86_64-eduos/debug/bootimage-eduos-rs.bin",
      imageKind: "raw-disk",
      qemu: { cpu: "qemu64,apic,fsgsbase,rdtscp,xsave,xsaveopt,fxsr", memoryMiB: 256, machine: "q35", smp: 1, extraArgs: ["-device", "virtio-rng-pci"] },
    });
    const argv = qemuArgv(profile, "/srv/ws25,x/target/x86_64-eduos/debug/bootimage-eduos-rs.bin");
    expect(argv).not.toContain("-kernel");
    // A comma in the path is doubled inside QEMU's option list.
    expect(option(argv, "-drive")).toBe("format=raw,file=/srv/ws25,,x/target/x86_64-eduos/debug/bootimage-eduos-rs.bin");
    expect(option(argv, "-cpu")).toBe("qemu64,apic,fsgsbase,rdtscp,xsave,xsaveopt,fxsr");
    expect(option(argv, "-m")).toBe("256M");
    expect(option(argv, "-machine")).toBe("q35");
    expect(option(argv, "-smp")).toBe("1");
    expect(argv.slice(-2)).toEqual(["-device", "virtio-rng-pci"]);
    expect(argv).toContain("-serial");
  });

  it("sizes the boot limits for the guest's memory, unless the profile sets them", () => {
    expect(externalProfile(stage).limits.boot).toMatchObject({ addressSpaceMiB: 512, memoryMiB: 256 });
    expect(externalProfile({ ...stage, qemu: { memoryMiB: 256 } }).limits.boot).toMatchObject({ addressSpaceMiB: 704, memoryMiB: 448 });
    expect(externalProfile({ ...stage, qemu: { memoryMiB: 256 }, limits: { boot: { addressSpaceMiB: 2048 } } }).limits.boot.addressSpaceMiB).toBe(2048);
  });

  it("chooses the QEMU binary by architecture or path", () => {
    expect(externalProfile({ ...stage, qemu: { binary: "i386" } }).qemu.binary).toBe("/usr/bin/qemu-system-i386");
    expect(externalProfile({ ...stage, qemu: { binary: "x86_64" } }).qemu.binary).toBe("/usr/bin/qemu-system-x86_64");
    expect(externalProfile({ ...stage, qemu: { binary: "/opt/qemu/bin/qemu-system-x86_64" } }).qemu.binary).toBe("/opt/qemu/bin/qemu-system-x86_64");
    expect(problem({ ...stage, qemu: { binary: "/bin/sh" } })).toMatch(/qemu\.binary: must be x86_64 or i386, or an absolute path to a qemu-system-\* binary/);
    expect(problem({ ...stage, qemu: { binary: "qemu-system-x86_64" } })).toMatch(/qemu\.binary: must be/);
    expect(problem({ ...stage, qemu: { binary: "constructor" } })).toMatch(/qemu\.binary: must be/);
  });

  it("takes a whole QEMU command line only with {image} in it, and not mixed with the engine's", () => {
    const args = ["-machine", "pc", "-serial", "stdio", "-kernel", "{image}"];
    expect(qemuArgv(externalProfile({ ...stage, qemu: { args } }), "/k")).toEqual(["/usr/bin/qemu-system-x86_64", "-machine", "pc", "-serial", "stdio", "-kernel", "/k"]);
    expect(problem({ ...stage, qemu: { args: ["-machine", "pc"] } })).toMatch(/qemu\.args must contain \{image\}/);
    expect(problem({ ...stage, qemu: { args, cpu: "max" } })).toMatch(/give either it or qemu\.cpu/);
    expect(problem({ ...stage, imageKind: "raw-disk", qemu: { args } })).toMatch(/leave out imageKind/);
  });

  it("refuses what would break the console or the sandbox, with what to write instead", () => {
    expect(problem({ ...stage, imageKind: "floppy" })).toMatch(/imageKind must be one of elf-kernel, raw-disk, iso/);
    expect(problem({ ...stage, qemu: { extraArgs: ["-serial", "file:/tmp/x"] } })).toMatch(/qemu\.extraArgs\[0\]: -serial is not allowed: the serial console is the run's output/);
    expect(problem({ ...stage, qemu: { extraArgs: ["-device", "x", "--cpu", "max"] } })).toMatch(/qemu\.extraArgs\[2\]: --cpu is not allowed: set "qemu\.cpu" instead/);
    expect(problem({ ...stage, qemu: { extraArgs: ["-kernel", "/x"] } })).toMatch(/set "imageKind": "elf-kernel" instead/);
    expect(problem({ ...stage, qemu: { extraArgs: ["-enable-kvm"] } })).toMatch(/no \/dev\/kvm/);
    expect(problem({ ...stage, qemu: { cpu: "max; rm -rf /" } })).toMatch(/qemu\.cpu: must be a QEMU option value/);
    expect(problem({ ...stage, qemu: { memoryMiB: 0 } })).toMatch(/qemu\.memoryMiB: /);
  });
});

describe("kernel profile: the rest of the configuration", () => {
  it("names unknown (misspelt) fields and wrong types instead of ignoring them", () => {
    expect(problem({ ...stage, extraReadonlyPaths: ["/srv/v"] })).toBe('kernel profile "eduos-stage3": unknown field(s) "extraReadonlyPaths"');
    expect(problem({ ...stage, qemu: { memory: 64 } })).toMatch(/qemu: unknown field\(s\) "memory"/);
    expect(problem({ ...stage, limits: { boot: { wallSeconds: -1 } } })).toMatch(/limits\.boot\.wallSeconds: /);
    expect(problem({ ...stage, successExitCode: 256 })).toMatch(/successExitCode must be an exit status/);
    expect(problem({ ...stage, buildCommand: [] })).toMatch(/buildCommand must be a non-empty argv array/);
    expect(problem({ ...stage, name: "Edu OS" })).toMatch(/name must match/);
    expect(problem({ ...stage, replaceableFiles: [{ path: "../x.rs" }] })).toMatch(/replaceableFiles\[0\]\.path: must be a path inside sourceDir/);
    expect(problem(null)).toMatch(/must be an object/);
    expect(() => loadKernelProfiles({ OSBE_KERNELS: JSON.stringify([{ ...stage, imageKind: "disk" }]) })).toThrow(/kernel profile "eduos-stage3": imageKind must be one of/);
  });

  it("reads exit meanings keyed by status from JSON", () => {
    const profile = loadKernelProfiles({ OSBE_KERNELS: JSON.stringify([{ ...stage, exitMeanings: { "3": "the kernel panicked" } }]) })[1]!;
    expect(profile.exitMeanings[3]).toBe("the kernel panicked");
  });
});

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});
