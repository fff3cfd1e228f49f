/* A stale cache: a classic use-after-free. The program has undefined behaviour! */
#include <stdio.h>
#include <stdlib.h>

struct account { char owner[16]; long balance; };

static struct account *table[4];       /* the accounts, by number */
static struct account *last_used;      /* a cache: the last account looked up */

static struct account *lookup(int id)
{
    last_used = table[id];
    return last_used;
}

static void open_account(int id, const char *owner, long balance)
{
    struct account *a = malloc(sizeof *a);
    if (a == NULL)
        exit(1);
    snprintf(a->owner, sizeof a->owner, "%s", owner);
    a->balance = balance;
    table[id] = a;
}

int main(void)
{
    open_account(0, "alice", 100);
    printf("account 0: %s, %ld\n", lookup(0)->owner, table[0]->balance);
    free(table[0]);                    /* close account 0 ... */
    table[0] = NULL;                   /* ... but forget the cache */
    open_account(1, "mallory", 1000000);
    printf("cached:    %s, %ld\n", last_used->owner, last_used->balance);  /* use after free */
    free(table[1]);
    return 0;
}
