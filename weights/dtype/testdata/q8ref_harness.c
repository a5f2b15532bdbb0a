#include <stdio.h>
#include <stdlib.h>
#include "ggml-impl.h"
#include "ggml-quants.h"
#include "ggml-common.h"
// reads n float32 (n%32==0) from stdin, writes block_q8_0 to stdout
int main(void) {
    static float buf[1<<20];
    size_t n = fread(buf, sizeof(float), 1<<20, stdin);
    static block_q8_0 out[(1<<20)/32];
    quantize_row_q8_0_ref(buf, out, n);
    fwrite(out, sizeof(block_q8_0), n/32, stdout);
    fprintf(stderr, "%zu values, sizeof block %zu\n", n, sizeof(block_q8_0));
    return 0;
}
