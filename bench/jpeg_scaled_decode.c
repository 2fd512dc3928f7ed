/* Can libjpeg-turbo's DCT-domain scaling make the loader's decoding cheaper? (issue 20: halve the
 * CPU work per image.) Times one thread decoding every JPEG of a folder to RGB at scale 8/8, 5/8
 * and 4/8 (libjpeg's scale_num/scale_denom), with the accurate and the fast IDCT, three rounds.
 * The loader benchmark's photos are 500x375 and become 224-px crops, so 5/8 (313x235) is the
 * smallest scale that still holds a full-resolution crop; 4/8 (250x188) is too small.
 *
 *   gcc -O2 -o target/jpeg_scaled bench/jpeg_scaled_decode.c -ljpeg   # libjpeg62-turbo-dev
 *   target/jpeg_scaled target/bench/photos
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>

typedef struct {
    unsigned char *data;
    long len;
} Buffer;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Decodes one JPEG at scale num/8; returns a checksum so the work is not optimised away. */
static long decode(Buffer b, int num, int fast) {
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, b.data, b.len);
    jpeg_read_header(&c, TRUE);
    c.scale_num = num;
    c.scale_denom = 8;
    c.out_color_space = JCS_RGB;
    if (fast) {
        c.dct_method = JDCT_IFAST;
        c.do_fancy_upsampling = FALSE;
    }
    jpeg_start_decompress(&c);
    int w = c.output_width, h = c.output_height;
    unsigned char *out = malloc((size_t)w * h * 3);
    while (c.output_scanline < c.output_height) {
        unsigned char *row = out + (size_t)c.output_scanline * w * 3;
        jpeg_read_scanlines(&c, &row, 1);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    long sum = out[0] + w * 1000L + h;
    free(out);
    return sum;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FOLDER_OF_JPEGS\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 1;
    }
    static Buffer files[4096];
    int n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(dir)) && n < 4096) {
        if (!strstr(e->d_name, ".jpg")) continue;
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        files[n].len = ftell(f);
        fseek(f, 0, SEEK_SET);
        files[n].data = malloc(files[n].len);
        if (fread(files[n].data, 1, files[n].len, f) == (size_t)files[n].len) n++;
        fclose(f);
    }
    closedir(dir);
    const int scales[] = {8, 5, 4};
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 3; k++)
            for (int fast = 0; fast < 2; fast++) {
                double t = now();
                long sum = 0;
                for (int i = 0; i < n; i++) sum += decode(files[i], scales[k], fast);
                printf("round %d scale %d/8 %s IDCT: %.3f ms per image (%d images, %ld)\n", round,
                       scales[k], fast ? "fast" : "accurate", (now() - t) * 1e3 / n, n, sum % 7);
            }
    return 0;
}
