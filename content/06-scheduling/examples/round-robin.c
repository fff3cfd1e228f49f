/* Round-robin scheduling, simulated one time unit at a time. */
#include <stdio.h>

#define QUANTUM 2
#define MAX_JOBS 8

struct job {
    char name;
    int arrival, burst;                 /* input */
    int remaining, first_run, finish;   /* filled in by the simulation */
};

static struct job jobs[] = {            /* sorted by arrival time */
    { 'A', 0, 5, 0, 0, 0 },
    { 'B', 1, 3, 0, 0, 0 },
    { 'C', 2, 1, 0, 0, 0 },
    { 'D', 6, 4, 0, 0, 0 },
};
enum { N = sizeof jobs / sizeof jobs[0] };

static int queue[MAX_JOBS], head, tail; /* ready queue: a ring buffer of job indices */
static int next_arrival;
static char timeline[128];              /* who ran in each time unit */
static int len;

static void record(char who)
{
    if (len < (int)sizeof timeline)
        timeline[len++] = who;
}

static void push(int j) { queue[tail++ % MAX_JOBS] = j; }
static int pop(void) { return queue[head++ % MAX_JOBS]; }

static void admit(int now)              /* new arrivals join the back of the queue */
{
    while (next_arrival < N && jobs[next_arrival].arrival <= now)
        push(next_arrival++);
}

int main(void)
{
    int now = 0, done = 0;
    for (int i = 0; i < N; i++) {
        jobs[i].remaining = jobs[i].burst;
        jobs[i].first_run = -1;
    }
    admit(now);
    while (done < N) {
        if (head == tail) {             /* nothing ready: the CPU idles */
            record('.');
            admit(++now);
            continue;
        }
        struct job *j = &jobs[pop()];
        if (j->first_run < 0)
            j->first_run = now;
        int slice = j->remaining < QUANTUM ? j->remaining : QUANTUM;
        for (int t = 0; t < slice; t++) {
            record(j->name);
            admit(++now);               /* arrivals during the slice queue up first */
        }
        j->remaining -= slice;
        if (j->remaining > 0)
            push((int)(j - jobs));      /* preempted: back of the queue */
        else {
            j->finish = now;
            done++;
        }
    }
    printf("timeline (quantum %d): %.*s\n\n", QUANTUM, len, timeline);
    printf("job arrival burst response turnaround\n");
    double sum_response = 0, sum_turnaround = 0;
    for (int i = 0; i < N; i++) {
        int response = jobs[i].first_run - jobs[i].arrival;
        int turnaround = jobs[i].finish - jobs[i].arrival;
        printf("  %c %7d %5d %8d %10d\n", jobs[i].name, jobs[i].arrival, jobs[i].burst,
               response, turnaround);
        sum_response += response;
        sum_turnaround += turnaround;
    }
    printf("average            %8.2f %10.2f\n", sum_response / N, sum_turnaround / N);
    return 0;
}
