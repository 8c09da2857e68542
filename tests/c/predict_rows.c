/* Reads rows of integer inputs from a text file ("rows columns" on the first line, then one row per
 * line) and prints, for each row, intnet_predict's class index and that class's label on one line.
 * The exported header is included as "model.h" (compile with -I pointing at its folder). The row is
 * on the heap: a network may have millions of inputs. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv)
{
    FILE *in;
    long rows, columns, r, c;
    int32_t *x = malloc(sizeof *x * INTNET_INPUTS);
    if (argc != 2 || !x || !(in = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: %s ROWS_FILE\n", argv[0]);
        return 2;
    }
    if (fscanf(in, "%ld %ld", &rows, &columns) != 2 || columns != INTNET_INPUTS) {
        fprintf(stderr, "%s: expected a header 'rows %d'\n", argv[1], INTNET_INPUTS);
        return 2;
    }
    for (r = 0; r < rows; r++) {
        for (c = 0; c < columns; c++) {
            long value;
            if (fscanf(in, "%ld", &value) != 1) {
                fprintf(stderr, "%s: row %ld is short\n", argv[1], r);
                return 2;
            }
            x[c] = (int32_t)value;
        }
        c = intnet_predict(x);
        printf("%ld %s\n", c, intnet_class_name((int)c));
    }
    fclose(in);
    free(x);
    return 0;
}
