// Anchor translation unit for the precompiled torch header (see torch_pch.h).
#include "common/pch/torch_pch.h"
