/**
 * Course environments: a course (content folder) names its own image per language in course.json,
 * and `npm run check` runs its examples in it, through the docker driver and the real Docker
 * Engine. A marker file present only in the course's image proves which image ran; an image that
 * does not exist is an error naming it, and the other languages and courses keep working.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_LABEL } from "../../sandbox/drivers/docker";
import { startTestDocker, type TestDocker } from "./docker-daemon";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const COURSE_IMAGE = "osbyexample-test-course:marker";
const MISSING_IMAGE = "osbyexample-no-such-image:1";
const MARKER = "/etc/osbyexample-course-marker";

const READ_MARKER = `[source%run,c]
----
#include <stdio.h>
int main(void) {
    char line[64] = "no marker\\n";
    FILE *f = fopen("${MARKER}", "r");
    if (f) fgets(line, sizeof line, f);
    fputs(line, stdout);
    return 0;
}
----
`;

function deck(title: string, blocks: string): string {
  return `= ${title}\n\n== The example\n\n${blocks}`;
}

let docker: TestDocker;
let base: string;

function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      ["scripts/check.ts", ...args],
      {
        cwd: ROOT,
        timeout: 300_000,
        env: { ...process.env, SANDBOX_DRIVER: "docker", DOCKER_HOST: docker.host, SANDBOX_IMAGE: docker.image },
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  docker = await startTestDocker();
  // The course's image: the toolchain image plus a marker file.
  const maker = await docker.docker.createContainer({
    Image: docker.image,
    Cmd: ["/bin/sh", "-c", `echo 'course image marker' > ${MARKER}`],
    HostConfig: { NetworkMode: "none" },
  });
  await maker.start();
  await maker.wait();
  const [repo, tag] = COURSE_IMAGE.split(":");
  await maker.commit({ repo, tag });
  await maker.remove({ force: true });

  base = fs.mkdtempSync(path.join(os.tmpdir(), "osbx-course-"));
  // A course with its own image for C, and one that does not exist for Rust.
  fs.mkdirSync(path.join(base, "course/marker"), { recursive: true });
  fs.writeFileSync(path.join(base, "course/course.json"), JSON.stringify({ images: { c: COURSE_IMAGE, rust: MISSING_IMAGE } }));
  fs.writeFileSync(
    path.join(base, "course/marker/index.adoc"),
    deck("Marker", `${READ_MARKER}[.output]\n....\ncourse image marker\n....\n\n== Rust\n\n[source%run,rust]\n----\nfn main() { println!("hi"); }\n----\n`),
  );
  // A course without settings: the default image, which has no marker.
  fs.mkdirSync(path.join(base, "plain/default"), { recursive: true });
  fs.writeFileSync(path.join(base, "plain/default/index.adoc"), deck("Default", `${READ_MARKER}[.output]\n....\nno marker\n....\n`));
}, 20 * 60_000);

afterAll(async () => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
  await docker?.docker.getImage(COURSE_IMAGE).remove({ force: true }).catch(() => undefined);
  const left = await docker?.docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
  await docker?.stop();
  expect(left ?? [], "labelled containers left").toEqual([]);
}, 120_000);

describe("a course's own images", { timeout: 300_000 }, () => {
  it("runs the course's C examples in its image, names the missing Rust image, and another course uses the default", async () => {
    const r = await check([path.join(base, "course"), path.join(base, "plain")]);
    const problems = r.stdout.split("\n").filter((l) => /: error: /.test(l));
    // The C block passed in the course image (its output is the marker); the Rust block names the missing image.
    expect(problems, r.stdout + r.stderr).toHaveLength(1);
    expect(problems[0]).toMatch(/marker\/index\.adoc:\d+: error: runnable block .* \(rust\): the sandbox could not run it/);
    expect(r.stdout).toContain(`image ${MISSING_IMAGE} does not exist`);
    expect(r.stderr).toContain("runnable blocks: 3 compiled and run, 1 failed");
    expect(r.code).toBe(1);
  });

  it("a broken course.json is an error naming the file", async () => {
    const broken = path.join(base, "broken");
    fs.mkdirSync(path.join(broken, "d"), { recursive: true });
    fs.writeFileSync(path.join(broken, "course.json"), `{ "images": { "c": 42 } }`);
    fs.writeFileSync(path.join(broken, "d/index.adoc"), deck("Broken", READ_MARKER));
    const r = await check([broken]);
    expect(r.stdout).toMatch(/course\.json: error: images\.c: .*\(the course's runnable blocks were not run\)/);
    expect(r.code).toBe(1);
  });
});
