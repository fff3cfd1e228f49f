/* A bounded buffer: one producer, one consumer, one mutex, two condition variables. */
#include <pthread.h>
#include <stdio.h>

#define CAPACITY 4
#define ITEMS 8

static int buffer[CAPACITY];
static int head, tail, count;             /* ring buffer state, protected by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void put(int item)
{
    pthread_mutex_lock(&lock);
    while (count == CAPACITY)             /* while, not if: re-check after every wake-up */
        pthread_cond_wait(&not_full, &lock);
    buffer[tail] = item;
    tail = (tail + 1) % CAPACITY;
    count++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

static int get(void)
{
    pthread_mutex_lock(&lock);
    while (count == 0)
        pthread_cond_wait(&not_empty, &lock);  /* unlocks, sleeps, relocks */
    int item = buffer[head];
    head = (head + 1) % CAPACITY;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    return item;
}

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 1; i <= ITEMS; i++)
        put(i * i);
    put(-1);                              /* end marker */
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, producer, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    int sum = 0;
    for (int item; (item = get()) != -1; ) {
        printf("consumed %d\n", item);
        sum += item;
    }
    pthread_join(t, NULL);
    printf("sum = %d\n", sum);
    return 0;
}
