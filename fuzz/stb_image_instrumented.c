// The fuzz build's own copy of stb_image's decoder (the implementation in Debian's header), compiled
// with the harness's coverage and sanitizers. The decoder in Debian's libstb is not instrumented, so
// without this libFuzzer would see none of stb's branches and the image harness would fuzz blind.
// The definitions here take precedence over libstb's when fuzz_image links.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
