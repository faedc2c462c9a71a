// Internal: the reference (oracle) binary conv2d. Direct loops over every output, tap and
// channel, multiplying +-1 values one by one (no popcount, no padding buffer, no
// thresholds), so it checks the fast paths from the definitions alone.
#pragma once

#include "bnnkit/kernels.h"

namespace bnnkit {

// weights (O, KH, KW, words_for(C_in / groups)); output as BConv2D::run.
void bconv2d_reference(const BConv2DShape& s, const word_t* weights,
                       const OutputTransform& t, const word_t* input, void* output);

}  // namespace bnnkit
