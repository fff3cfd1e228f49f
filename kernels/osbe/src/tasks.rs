//! Lesson: the tasks the scheduler runs.
//!
//! Each task is an ordinary function on its own stack. Tasks use only system calls
//! (syscall.rs): `sys_println!` to print and `yield_now` to let the next task run.
//!
//! Kept by any replacement of this file: `spawn_all`.

use crate::scheduler;
use crate::sys_println;
use crate::syscall::yield_now;

pub fn spawn_all() {
    scheduler::spawn("A", task_a);
    scheduler::spawn("B", task_b);
    scheduler::spawn("C", task_c);
}

fn task_a() {
    for step in 1..=3 {
        sys_println!("task A: step {step}");
        yield_now();
    }
}

fn task_b() {
    for step in 1..=2 {
        sys_println!("task B: step {step}");
        yield_now();
    }
}

fn task_c() {
    for step in 1..=3 {
        sys_println!("task C: step {step}");
        yield_now();
    }
}
