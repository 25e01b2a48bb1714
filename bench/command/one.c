#include <stdio.h>
#include <stdlib.h>
/* Writes one metrics line to $SWEEP_METRICS (or argv[1]) and exits. */
int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : getenv("SWEEP_METRICS");
    FILE *f = fopen(path, "a");
    if (!f) return 1;
    fprintf(f, "{\"epoch\": 1, \"val_loss\": 0.5}\n");
    return fclose(f) != 0;
}
