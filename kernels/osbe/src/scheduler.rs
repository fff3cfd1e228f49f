//! Lesson: a cooperative round-robin scheduler.
//!
//! Each task has its own stack. A task runs until it gives the CPU back (`yield_now`, which
//! tasks reach through the SYS_YIELD system call); then the scheduler loop in `run` picks the
//! next ready task in turn. Nothing forces a task to yield: that is what "cooperative" means.
//!
//! Switching tasks means switching stacks: `switch_context` pushes the registers the caller
//! expects to survive a call, saves the stack pointer, loads another task's stack pointer and
//! pops that task's registers. Its `ret` then returns into the other task.
//!
//! Kept by any replacement of this file: `spawn`, `run`, `yield_now`.

use crate::kprintln;
use core::arch::global_asm;

const MAX_TASKS: usize = 4;
const STACK_SIZE: usize = 8 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum State {
    Free,
    Ready,
    Finished,
}

#[derive(Clone, Copy)]
struct Task {
    name: &'static str,
    entry: fn(),
    state: State,
    /// The task's stack pointer while it is not running.
    esp: usize,
}

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

const NO_TASK: Task = Task { name: "", entry: || {}, state: State::Free, esp: 0 };

// One CPU, and a task only loses the CPU when it yields: plain statics are enough.
static mut TASKS: [Task; MAX_TASKS] = [NO_TASK; MAX_TASKS];
static mut STACKS: [Stack; MAX_TASKS] = [const { Stack([0; STACK_SIZE]) }; MAX_TASKS];
/// Index of the running task.
static mut CURRENT: usize = 0;
/// The scheduler loop's own stack pointer while a task runs.
static mut SCHEDULER_ESP: usize = 0;

global_asm!(
    r#"
// switch_context(save_esp_to: *mut usize, new_esp: usize)
.global switch_context
switch_context:
    mov eax, [esp + 4]          // where to save the current stack pointer
    mov edx, [esp + 8]          // the stack pointer to switch to
    push ebp                    // the callee-saved registers of the cdecl convention;
    push ebx                    // the compiler saved all others before calling us
    push esi
    push edi
    mov [eax], esp
    mov esp, edx                // from here on we are on the other stack
    pop edi
    pop esi
    pop ebx
    pop ebp
    ret                         // into the other task, right after its own switch_context call
"#
);

unsafe extern "C" {
    fn switch_context(save_esp_to: *mut usize, new_esp: usize);
}

/// Creates a task that will run `entry` on its own stack. Returns its number.
pub fn spawn(name: &'static str, entry: fn()) -> usize {
    // SAFETY: one CPU, cooperative: nothing else touches the task table while we do.
    unsafe {
        let tasks = &mut *(&raw mut TASKS);
        let id = tasks.iter().position(|t| t.state == State::Free).expect("too many tasks");

        // Build the stack as if the task had called switch_context itself: four saved
        // registers (all zero) and a return address leading to `task_start`.
        let top = (&raw mut STACKS[id]).add(1) as *mut usize; // one past the end
        let frame = [0, 0, 0, 0, task_start as *const () as usize, 0];
        //          edi esi ebx ebp  return address: task_start             (its own, unused)
        let esp = top.sub(frame.len());
        esp.copy_from_nonoverlapping(frame.as_ptr(), frame.len());

        tasks[id] = Task { name, entry, state: State::Ready, esp: esp as usize };
        id
    }
}

/// Where every new task begins: run its function, then leave for good.
extern "C" fn task_start() -> ! {
    // SAFETY: as in spawn.
    unsafe {
        let entry = TASKS[CURRENT].entry;
        entry();
        TASKS[CURRENT].state = State::Finished;
        kprintln!("[sched] task {} finished", TASKS[CURRENT].name);
        yield_now(); // the scheduler never picks a finished task: this does not return
    }
    unreachable!()
}

/// Gives the CPU back to the scheduler loop; returns when this task's turn comes again.
pub fn yield_now() {
    // SAFETY: as in spawn. Only raw pointers cross the switch, no references.
    unsafe { switch_context(&raw mut TASKS[CURRENT].esp, SCHEDULER_ESP) }
}

/// The scheduler loop: round robin over the ready tasks until all of them have finished.
pub fn run() {
    // SAFETY: as in spawn.
    unsafe {
        let count = (0..MAX_TASKS).filter(|&id| TASKS[id].state == State::Ready).count();
        kprintln!("[sched] round robin over {count} tasks");
        loop {
            let mut ran_one = false;
            for id in 0..MAX_TASKS {
                if TASKS[id].state == State::Ready {
                    CURRENT = id;
                    switch_context(&raw mut SCHEDULER_ESP, TASKS[id].esp);
                    ran_one = true;
                }
            }
            if !ran_one {
                return;
            }
        }
    }
}
