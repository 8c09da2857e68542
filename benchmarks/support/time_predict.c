/* Times intnet_predict on one core: reads rows as tests/c/predict_rows.c does ("rows columns",
 * then one row per line), then calls intnet_predict on every row, round after round, for at least
 * the given seconds of this process's CPU time, and prints "examples seconds checksum". CPU time,
 * not wall time: on a shared machine the wall clock also counts the time the process waits for a
 * core (measured under a load average of 4 on 2 cores, minutes apart: 5.0 million examples/s by
 * the wall clock, 9.6 by CPU time, for the same program). The checksum (the sum of the predicted
 * indices) keeps the compiler from dropping the calls. The header is included as "model.h". */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    FILE *in;
    long rows, columns, r, examples = 0, checksum = 0;
    int32_t *x;
    double seconds, began, elapsed;
    if (argc != 3 || !(in = fopen(argv[1], "r")) || (seconds = atof(argv[2])) <= 0) {
        fprintf(stderr, "usage: %s ROWS_FILE SECONDS\n", argv[0]);
        return 2;
    }
    if (fscanf(in, "%ld %ld", &rows, &columns) != 2 || columns != INTNET_INPUTS || rows < 1) {
        fprintf(stderr, "%s: expected a header 'rows %d'\n", argv[1], INTNET_INPUTS);
        return 2;
    }
    x = malloc(sizeof *x * (size_t)(rows * columns));
    for (r = 0; r < rows * columns; r++) {
        long value;
        if (!x || fscanf(in, "%ld", &value) != 1) {
            fprintf(stderr, "%s: too few values\n", argv[1]);
            return 2;
        }
        x[r] = (int32_t)value;
    }
    fclose(in);
    began = now();
    do {
        for (r = 0; r < rows; r++) checksum += intnet_predict(x + r * columns);
        examples += rows;
        elapsed = now() - began;
    } while (elapsed < seconds);
    printf("%ld %.6f %ld\n", examples, elapsed, checksum);
    free(x);
    return 0;
}
