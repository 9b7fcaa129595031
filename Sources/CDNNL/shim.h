// oneDNN's C API (Debian's libdnnl-dev, which ships no pkg-config file: the headers are in
// /usr/include/oneapi/dnnl and the library in the default search path).
#include <oneapi/dnnl/dnnl.h>

// The execution-argument indices are macros defined in terms of other macros; as constants
// Swift sees them directly.
enum {
    CDNNL_ARG_SRC = DNNL_ARG_SRC,
    CDNNL_ARG_DST = DNNL_ARG_DST,
    CDNNL_ARG_WEIGHTS = DNNL_ARG_WEIGHTS,
    CDNNL_ARG_BIAS = DNNL_ARG_BIAS,
    CDNNL_ARG_DIFF_SRC = DNNL_ARG_DIFF_SRC,
    CDNNL_ARG_DIFF_DST = DNNL_ARG_DIFF_DST,
    CDNNL_ARG_SCRATCHPAD = DNNL_ARG_SCRATCHPAD,
    CDNNL_ARG_FROM = DNNL_ARG_FROM,
    CDNNL_ARG_TO = DNNL_ARG_TO,
};
