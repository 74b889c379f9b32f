// Embeds the m3vit runtime through its C++ API: open an export, run one task on a picture, write
// the task's picture. Build against the installed package (examples/embed/CMakeLists.txt).
//   embed_cpp MODEL.safetensors TASK IN.png OUT.png
#include <m3vit/m3vit.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors TASK IN.png OUT.png\n", argv[0]);
    return 2;
  }
  try {
    m3vit::api::Model model(argv[1]);  // open once: every tensor checked, weights packed
    const int task = model.task(argv[2]);
    const std::vector<float> image = model.load_image(argv[3]);  // [3, H, W], normalised
    const std::vector<float> logits = model.run(task, image);    // [C, H, W]
    model.write_picture(task, logits, argv[4]);
    std::printf("%s: %s in %.1f ms (m3vit %s)\n", argv[4], argv[2], model.last_timings().total_ms,
                m3vit::api::version().c_str());
    return 0;
  } catch (const m3vit::api::Error& e) {
    std::fprintf(stderr, "embed_cpp: %s\n", e.what());
    return 1;
  }
}
