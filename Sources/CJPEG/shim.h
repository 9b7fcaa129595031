// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev). Unlike the libjpeg API,
// whose error_exit must longjmp, it reports failures as return codes and messages.
#include <turbojpeg.h>
