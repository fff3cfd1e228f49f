/* A tiny shell: read one command per line, fork, exec, wait, report. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 16

int main(void)
{
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        printf("$ %s\n", line);       /* echo the command, like a transcript */
        fflush(stdout);               /* the child must not inherit unflushed output */

        char *argv[MAX_ARGS + 1];
        int argc = 0;
        for (char *tok = strtok(line, " "); tok != NULL && argc < MAX_ARGS;
             tok = strtok(NULL, " "))
            argv[argc++] = tok;
        argv[argc] = NULL;

        pid_t pid = fork();
        if (pid == -1) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            execvp(argv[0], argv);
            fprintf(stderr, "%s: command not found\n", argv[0]);
            _exit(127);
        }

        int status;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status))
            printf("[exit status %d]\n", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            printf("[killed by signal %d]\n", WTERMSIG(status));
    }
    return 0;
}
