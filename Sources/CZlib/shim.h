// zlib from Debian (zlib1g-dev): inflate and deflate (gzip files, zip members, PNG colour profiles), CRC-32.
#include <zlib.h>
