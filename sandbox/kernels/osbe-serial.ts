/**
 * The osbe kernel's complete serial output when no lesson file is replaced: deterministic, since
 * the scheduler is cooperative and the tasks yield at fixed points. The tests of the kernel and of
 * kernel runs through the engine compare against it.
 */
export const EXPECTED_SERIAL: readonly string[] = [
  "Hello from the OSByExample kernel!",
  "[syscall] int 0x80 is ready",
  "[sched] round robin over 3 tasks",
  "task A: step 1",
  "task B: step 1",
  "task C: step 1",
  "task A: step 2",
  "task B: step 2",
  "task C: step 2",
  "task A: step 3",
  "[sched] task B finished",
  "task C: step 3",
  "[sched] task A finished",
  "[sched] task C finished",
  "[kernel] all tasks finished, shutting down",
];
