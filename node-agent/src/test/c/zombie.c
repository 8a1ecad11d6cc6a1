/* IT target: leaves a child unreaped (a zombie) and prints its pid once it is one. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  pid_t c = fork();
  if (c == 0) _exit(0);
  siginfo_t si;
  waitid(P_PID, c, &si, WEXITED | WNOWAIT); /* wait for the exit, but do not reap */
  printf("zombie=%d\nready\n", c);
  fflush(stdout);
  for (;;) pause();
}
