/* A two-stage pipeline built by hand:  echo ... | (uppercase it in the parent) */
#include <ctype.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd[2];                        /* fd[0]: read end, fd[1]: write end */
    if (pipe(fd) == -1) {
        perror("pipe");
        return 1;
    }

    pid_t pid = fork();
    if (pid == -1) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {                   /* child: becomes echo, writing into the pipe */
        dup2(fd[1], STDOUT_FILENO);   /* fd 1 now refers to the pipe's write end */
        close(fd[0]);
        close(fd[1]);
        execlp("echo", "echo", "data flows through the pipe", (char *)NULL);
        perror("execlp");             /* only reached if exec failed */
        _exit(127);
    }

    close(fd[1]);                     /* without this, read() never sees end-of-file */
    char buf[256];
    ssize_t n;
    size_t total = 0;
    while ((n = read(fd[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            putchar(toupper((unsigned char)buf[i]));
        total += (size_t)n;
    }
    close(fd[0]);

    int status;
    waitpid(pid, &status, 0);
    printf("parent: read %zu bytes, echo exited with status %d\n",
           total, WEXITSTATUS(status));
    return 0;
}
