/// All jobs arrive at time 0; the numbers are their CPU bursts.
const BURSTS: [u32; 4] = [8, 4, 2, 1];

/// Average (turnaround, response) when jobs run to completion in `order`.
fn run_to_completion(order: &[u32]) -> (f64, f64) {
    let (mut now, mut turnaround, mut response) = (0, 0, 0);
    for &burst in order {
        response += now; // first run = start
        now += burst;
        turnaround += now; // finish time (arrival is 0)
    }
    let n = order.len() as f64;
    (turnaround as f64 / n, response as f64 / n)
}

/// Average (turnaround, response) under round robin with the given quantum.
fn round_robin(bursts: &[u32], quantum: u32) -> (f64, f64) {
    let mut left = bursts.to_vec();
    let mut first_run: Vec<Option<u32>> = vec![None; bursts.len()];
    let (mut now, mut turnaround) = (0, 0);
    while left.iter().any(|&l| l > 0) {
        for i in 0..left.len() {
            if left[i] == 0 {
                continue;
            }
            first_run[i].get_or_insert(now);
            let slice = left[i].min(quantum);
            now += slice;
            left[i] -= slice;
            if left[i] == 0 {
                turnaround += now;
            }
        }
    }
    let n = bursts.len() as f64;
    let response: u32 = first_run.iter().flatten().sum();
    (turnaround as f64 / n, response as f64 / n)
}

fn main() {
    let mut shortest_first = BURSTS;
    shortest_first.sort();
    let rows = [
        ("FIFO", run_to_completion(&BURSTS)),
        ("SJF", run_to_completion(&shortest_first)),
        ("RR, quantum 1", round_robin(&BURSTS, 1)),
        ("RR, quantum 4", round_robin(&BURSTS, 4)),
    ];
    println!("{:<14} {:>10} {:>9}", "policy", "turnaround", "response");
    for (name, (turnaround, response)) in rows {
        println!("{name:<14} {turnaround:>10.2} {response:>9.2}");
    }
}
