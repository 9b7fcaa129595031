// Debian's libopenblas-dev ships cblas.h under the variant's include folder
// (openblas-pthread); pkg-config adds that folder to the search path.
#include <cblas.h>
