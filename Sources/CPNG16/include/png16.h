// 16-bit PNG samples, exactly as stored, through libpng's classic API. The simplified API
// (png_image_*) that BlendImage uses otherwise gives 16-bit data only as linear light with
// premultiplied alpha, which would change the stored values. The classic API reports errors
// by longjmp; these functions keep the setjmp and every libpng call inside C, so no jump
// ever crosses a Swift frame.
#ifndef BLEND_PNG16_H
#define BLEND_PNG16_H

#include <stddef.h>
#include <stdint.h>

/// Decodes a PNG of bit depth 16 (grey, grey+alpha, RGB, RGBA, with or without tRNS,
/// interlaced or not) into host-order samples: RGB, or RGBA when the file has alpha or tRNS;
/// grey is expanded to R = G = B. No gamma or colour conversion is applied.
/// On success returns 0 and sets *samples (free with blend_png16_free), *width, *height,
/// *channels (3 or 4) and *is_grey. On failure returns -1 with a message in `message`.
int blend_png16_decode(const uint8_t *data, size_t size, uint16_t **samples, uint32_t *width, uint32_t *height,
                       int *channels, int *is_grey, char *message, size_t message_size);

/// Encodes host-order 16-bit samples (`channels` 1: grey, 2: grey+alpha, 3: RGB, 4: RGBA) as a
/// PNG of bit depth 16.
/// On success returns 0 and sets *png (free with blend_png16_free) and *png_size.
int blend_png16_encode(const uint16_t *samples, uint32_t width, uint32_t height, int channels, uint8_t **png,
                       size_t *png_size, char *message, size_t message_size);

void blend_png16_free(void *pointer);

#endif
