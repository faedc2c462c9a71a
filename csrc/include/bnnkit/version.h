// bnnkit library version (the .bnn format version lives in format.h).
#pragma once

namespace bnnkit {
const char* version();
}  // namespace bnnkit
