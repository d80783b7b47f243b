// A native neighbour: some other native library in the process that, after titan-lifecycle took SIGTERM,
// installs its own handler with a plain sigaction and no chaining, the way many C libraries do.
//
// Loaded with LD_PRELOAD. Its constructor starts a thread that waits NEIGHBOUR_DELAY_MS, then replaces the
// SIGTERM handler and prints when it did (CLOCK_MONOTONIC, in milliseconds, like process.hrtime). Its
// handler prints one line per signal. Compiled by reliability/scenarios.cjs with the machine's gcc.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_term(int signo) {
  (void)signo;
  static const char line[] = "neighbour: handler ran\n";
  (void)!write(2, line, sizeof line - 1);
}

static long delay_ms;

static void *replace_later(void *unused) {
  (void)unused;
  long ms = delay_ms;
  struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&delay, NULL);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_term;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, NULL);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  char line[96];
  int n = snprintf(line, sizeof line, "neighbour: installed at %.3f\n", now.tv_sec * 1e3 + now.tv_nsec / 1e6);
  (void)!write(2, line, n);
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  // Only in the process that asked for it: LD_PRELOAD is inherited by children, the variable is not.
  const char *delay = getenv("NEIGHBOUR_DELAY_MS");
  if (delay == NULL) return;
  delay_ms = atol(delay);
  unsetenv("NEIGHBOUR_DELAY_MS");
  pthread_t thread;
  if (pthread_create(&thread, NULL, replace_later, NULL) == 0) pthread_detach(thread);
}
