#include "bnnkit/version.h"

namespace bnnkit {
const char* version() { return "0.1.0"; }
}  // namespace bnnkit
