// The one precompiled header for every translation unit that uses libtorch (~20 s and 1.3 GB each
// otherwise). Only .cpp files of torch targets see it; headers keep torch out where they can.
#pragma once
#include <torch/torch.h>
