// libpng 1.6 (Debian libpng-dev). BlendImage uses only the simplified API
// (png_image_*), which never longjmps into the caller.
#include <png.h>
