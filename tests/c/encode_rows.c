/* Reads raw rows and prints, for each, intnet_predict's class index and label after intnet_encode.
 * The file holds one field a line: a first line with the number of rows, then per row the values of
 * the INTNET_NUMERIC_COLUMNS numeric columns (as strtod reads them), then the values of the
 * INTNET_CATEGORICAL_COLUMNS categorical columns as text, each matched with intnet_category. The
 * exported header is included as "model.h". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int read_line(FILE *in, char *line, int size)
{
    size_t length;
    if (!fgets(line, size, in)) return 0;
    length = strlen(line);
    if (length > 0 && line[length - 1] == '\n') line[length - 1] = '\0';
    return 1;
}

int main(int argc, char **argv)
{
    static char line[4096];
    FILE *in;
    long rows, r;
    int j;
    double numeric[INTNET_NUMERIC_COLUMNS + 1];  /* + 1: no zero-length array when there is none */
    int32_t category[INTNET_CATEGORICAL_COLUMNS + 1];
    int32_t *x = malloc(sizeof *x * INTNET_INPUTS);
    if (argc != 2 || !x || !(in = fopen(argv[1], "r")) || !read_line(in, line, sizeof line)) {
        fprintf(stderr, "usage: %s RAW_ROWS_FILE\n", argv[0]);
        return 2;
    }
    rows = strtol(line, NULL, 10);
    for (r = 0; r < rows; r++) {
        for (j = 0; j < INTNET_NUMERIC_COLUMNS; j++) {
            if (!read_line(in, line, sizeof line)) return 2;
            numeric[j] = strtod(line, NULL);
        }
        for (j = 0; j < INTNET_CATEGORICAL_COLUMNS; j++) {
            if (!read_line(in, line, sizeof line)) return 2;
#if INTNET_CATEGORICAL_COLUMNS > 0
            category[j] = intnet_category(j, line);
#endif
        }
        intnet_encode(numeric, category, x);
        j = intnet_predict(x);
        printf("%d %s\n", j, intnet_class_name(j));
    }
    fclose(in);
    free(x);
    return 0;
}
