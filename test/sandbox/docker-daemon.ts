/**
 * The Docker Engine the docker-driver tests use: Debian's dockerd on its own socket and data
 * directory, started by the first test file that needs it when none answers there (CI starts on a
 * clean machine) and stopped by the file that started it. The data directory stays, so the
 * toolchain image (built offline once, deploy/images/build-offline.sh, a few minutes) is built
 * once per machine. OSBE_TEST_DOCKER_HOST points the tests at another Engine (left running).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import Docker from "dockerode";
import { buildToolchainImage, toolchainImageName } from "../../sandbox/drivers/docker-image";

const SOCKET = "/run/osbyexample-test-docker.sock";
const DATA_ROOT = "/var/lib/osbyexample-test-docker";
const EXEC_ROOT = "/run/osbyexample-test-docker";
const LOG = "/tmp/osbyexample-test-dockerd.log";

export interface TestDocker {
  host: string;
  docker: Docker;
  image: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function answers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

export async function startTestDocker(): Promise<TestDocker> {
  const host = process.env.OSBE_TEST_DOCKER_HOST || `unix://${SOCKET}`;
  const socketPath = host.replace(/^unix:\/\//, "");
  const docker = new Docker({ socketPath });
  let daemon: ChildProcess | null = null;
  if (!(await answers(docker))) {
    if (process.env.OSBE_TEST_DOCKER_HOST) throw new Error(`no Docker Engine answers at ${host}`);
    fs.mkdirSync(DATA_ROOT, { recursive: true });
    const log = fs.openSync(LOG, "a");
    daemon = spawn(
      "/usr/sbin/dockerd",
      ["--iptables=false", "--ip-masq=false", "--bridge=none", "--data-root", DATA_ROOT, "--exec-root", EXEC_ROOT, "--pidfile", `${EXEC_ROOT}.pid`, "-H", host],
      { stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    let exited = false;
    daemon.once("exit", () => (exited = true));
    for (let waited = 0; !(await answers(docker)); waited += 200) {
      if (exited || waited > 60_000) throw new Error(`dockerd did not start (see ${LOG})`);
      await sleep(200);
    }
  }
  const image = toolchainImageName();
  const present = await docker.getImage(image).inspect().then(() => true, () => false);
  if (!present) await buildToolchainImage(image, host, (line) => console.log(line));
  return {
    host,
    docker,
    image,
    async stop() {
      if (!daemon || daemon.exitCode !== null) return;
      const gone = new Promise((resolve) => daemon!.once("exit", resolve));
      daemon.kill("SIGTERM");
      await Promise.race([gone, sleep(20_000)]);
      if (daemon.exitCode === null) daemon.kill("SIGKILL");
      // Its run-time state goes; the data directory (with the image) stays for the next run.
      fs.rmSync(EXEC_ROOT, { recursive: true, force: true });
    },
  };
}
