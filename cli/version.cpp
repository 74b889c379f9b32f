// `m3vit --version`: the version, the export format it reads, and what this build can run here:
// the runtime's precisions on this CPU and libtorch's CUDA (docs/LIBRARY.md "Versions").
#ifdef M3VIT_WITH_TORCH
#include <torch/torch.h>
#include <torch/version.h>
#endif

#include <string>

#include "cli/commands.h"
#include "m3vit/version.h"
#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/simd.h"

namespace m3vit::cli {

std::string version_text() {
  std::string s = "m3vit " M3VIT_VERSION_STRING "\n";
  s += "export format  v" + std::to_string(M3VIT_EXPORT_FORMAT_VERSION) + " (reads model files of this format and older)\n";
  s += std::string("runtime        fp32 yes; bf16 ") +
       (rt::cpu_has_bf16() ? "yes (AVX512-BF16)" : "no (this CPU lacks AVX512-BF16)") +
       "; int8 " + (rt::cpu_has_vnni() ? "yes (AVX512-VNNI)" : "no (this CPU lacks AVX512-VNNI)") +
       "; AVX-512 kernels " + (rt::cpu_has_avx512() ? "yes" : "no") + "\n";
#ifdef M3VIT_WITH_TORCH
  s += "libtorch       " TORCH_VERSION ", CUDA ";
  if (!at::hasCUDA())
    s += "no (a CPU build of libtorch)";
  else
    s += "yes, " + std::to_string(torch::cuda::device_count()) + " device(s) visible";
#else
  s += "libtorch       none (a torch-free build: run, serve)";
#endif
  return s;
}

}  // namespace m3vit::cli
