#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* One run that writes 1,000,000 metrics lines (epochs 1..1e6, two metrics each) to
   $SWEEP_METRICS and 1 GB to stdout: the memory benchmark of bench/command/memory.sh. */
int main(void) {
    FILE *f = fopen(getenv("SWEEP_METRICS"), "a");
    if (!f) return 1;
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 1024; i++) fwrite(block, 1, sizeof block, stdout);
    for (long e = 1; e <= 1000000; e++)
        fprintf(f, "{\"epoch\": %ld, \"train_mse\": %.17g, \"val_loss\": %.17g}\n", e, 1.0 / e, 2.0 / e);
    return fclose(f) != 0;
}
