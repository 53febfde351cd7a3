/* interleave RUNS CMD... [-- CMD...]...: runs each command in turn, RUNS
 * rounds after 20 warm-up rounds, and prints each one's median, 10th
 * percentile and mean wall time. The commands alternate run by run, so a
 * machine whose speed drifts (a VM) slows all of them alike and their
 * ratios stay meaningful. Output and errors of the commands go to
 * /dev/null; a command's exit status is not looked at. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMMANDS 16

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double run_once(char **argv, int devnull) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(devnull, 1);
    dup2(devnull, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  waitpid(pid, NULL, 0);
  clock_gettime(CLOCK_MONOTONIC, &end);
  return (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3 || atoi(argv[1]) < 1) {
    fprintf(stderr, "usage: interleave RUNS CMD... [-- CMD...]...\n");
    return 2;
  }
  int runs = atoi(argv[1]), count = 0;
  char **commands[MAX_COMMANDS];
  commands[count++] = &argv[2];
  for (int i = 2; i < argc && count < MAX_COMMANDS; i++) {
    if (strcmp(argv[i], "--") == 0) {
      argv[i] = NULL;
      commands[count++] = &argv[i + 1];
    }
  }
  int devnull = open("/dev/null", O_WRONLY);
  double *times[MAX_COMMANDS];
  for (int c = 0; c < count; c++) times[c] = malloc(sizeof(double) * runs);
  for (int round = 0; round < 20; round++)
    for (int c = 0; c < count; c++) run_once(commands[c], devnull);
  for (int round = 0; round < runs; round++)
    for (int c = 0; c < count; c++) times[c][round] = run_once(commands[c], devnull);
  double first_median = 0;
  for (int c = 0; c < count; c++) {
    double sum = 0;
    for (int i = 0; i < runs; i++) sum += times[c][i];
    qsort(times[c], runs, sizeof(double), by_value);
    double median = times[c][runs / 2];
    if (c == 0) first_median = median;
    printf("  median %7.3f ms  p10 %7.3f  mean %7.3f  %5.2fx  ", median, times[c][runs / 10], sum / runs,
           median / first_median);
    for (char **word = commands[c]; *word; word++) printf("%s ", *word);
    printf("\n");
  }
  return 0;
}
