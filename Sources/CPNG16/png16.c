#include "png16.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct reader {
    const uint8_t *data;
    size_t size;
    size_t offset;
};

struct writer {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
};

struct failure {
    char *message;
    size_t size;
};

static void on_error(png_structp png, png_const_charp text) {
    struct failure *failure = png_get_error_ptr(png);
    if (failure && failure->message && failure->size > 0) {
        strncpy(failure->message, text ? text : "libpng error", failure->size - 1);
        failure->message[failure->size - 1] = 0;
    }
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_bytes(png_structp png, png_bytep out, png_size_t count) {
    struct reader *reader = png_get_io_ptr(png);
    if (count > reader->size - reader->offset) png_error(png, "the data ends before the image does");
    memcpy(out, reader->data + reader->offset, count);
    reader->offset += count;
}

static void write_bytes(png_structp png, png_bytep bytes, png_size_t count) {
    struct writer *writer = png_get_io_ptr(png);
    if (writer->size + count > writer->capacity) {
        size_t capacity = writer->capacity ? writer->capacity : 65536;
        while (capacity < writer->size + count) capacity *= 2;
        uint8_t *grown = realloc(writer->data, capacity);
        if (!grown) png_error(png, "out of memory");
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, bytes, count);
    writer->size += count;
}

static void flush_bytes(png_structp png) { (void)png; }

static void set_message(char *message, size_t size, const char *text) {
    if (message && size > 0) {
        strncpy(message, text, size - 1);
        message[size - 1] = 0;
    }
}

int blend_png16_decode(const uint8_t *data, size_t size, uint16_t **samples, uint32_t *width, uint32_t *height,
                       int *channels, int *is_grey, char *message, size_t message_size) {
    struct failure failure = {message, message_size};
    struct reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, on_error, on_warning);
    if (!png) { set_message(message, message_size, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_size, "out of memory");
        return -1;
    }
    // Volatile: assigned after setjmp and read after a longjmp back to it.
    uint16_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &reader, read_bytes);
    png_read_info(png, info);
    if (png_get_bit_depth(png, info) != 16) png_error(png, "not a 16-bit PNG");
    int color_type = png_get_color_type(png, info);
    int grey = (color_type & PNG_COLOR_MASK_COLOR) == 0;
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (grey) png_set_gray_to_rgb(png);
    // PNG stores big-endian samples; the caller wants host order.
    uint16_t probe = 1;
    if (*(uint8_t *)&probe == 1) png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    if (c != 3 && c != 4) png_error(png, "unexpected channel count after expansion");
    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)w * (size_t)c * 2) png_error(png, "unexpected row size after expansion");
    pixels = malloc((size_t)w * h * c * sizeof(uint16_t));
    rows = malloc((size_t)h * sizeof(png_bytep));
    if (!pixels || !rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < h; y++) rows[y] = (png_bytep)(pixels + (size_t)y * w * c);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    *samples = pixels;
    *width = w;
    *height = h;
    *channels = c;
    *is_grey = grey;
    return 0;
}

int blend_png16_encode(const uint16_t *samples, uint32_t width, uint32_t height, int channels, uint8_t **out,
                       size_t *out_size, char *message, size_t message_size) {
    if (channels < 1 || channels > 4) { set_message(message, message_size, "channels must be 1 to 4"); return -1; }
    struct failure failure = {message, message_size};
    struct writer writer = {NULL, 0, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, on_error, on_warning);
    if (!png) { set_message(message, message_size, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        set_message(message, message_size, "out of memory");
        return -1;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(writer.data);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, &writer, write_bytes, flush_bytes);
    static const int color_types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA};
    png_set_IHDR(png, info, width, height, 16, color_types[channels - 1],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint16_t probe = 1;
    if (*(uint8_t *)&probe == 1) png_set_swap(png);
    rows = malloc((size_t)height * sizeof(png_bytep));
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(samples + (size_t)y * width * channels);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = writer.data;
    *out_size = writer.size;
    return 0;
}

void blend_png16_free(void *pointer) { free(pointer); }
