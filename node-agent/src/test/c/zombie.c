/* IT target: leaves a child unreaped (a zombie) and prints its pid. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  pid_t c = fork();
  if (c == 0) _exit(0);
  printf("zombie=%d\nready\n", c);
  fflush(stdout);
  for (;;) pause();
}
