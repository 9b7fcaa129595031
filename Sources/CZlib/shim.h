// zlib from Debian (zlib1g-dev): inflate, for gzip'd vocabulary files.
#include <zlib.h>
