/* Reads lines "value low high" and prints intnet_scale_numeric(value, low, high) for each, one per
 * line. The exported header is included as "model.h". */
#include <stdio.h>

#include "model.h"

int main(void)
{
    double value, low, high;
    while (scanf("%lf %lf %lf", &value, &low, &high) == 3) printf("%ld\n", (long)intnet_scale_numeric(value, low, high));
    return 0;
}
