// What GET / and GET /sample.png answer: the browser page (serve/page.html: inline CSS and JS, no
// other asset) and the bundled sample image (assets/sample.png), both compiled in at build time
// (serve/CMakeLists.txt), so the server needs no file beside the binary.
#pragma once

#include <string_view>

namespace m3vit::serve {

std::string_view page_html();
std::string_view sample_png();

}  // namespace m3vit::serve
