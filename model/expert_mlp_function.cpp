#include "common/pch/torch_pch.h"

// The experts' matmuls as one autograd function (see the header for the formulas and why).
#include "model/expert_mlp_function.h"

#include <atomic>

namespace m3vit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Runs work(e) for every expert, one expert per thread at a time, taken in turn from a shared counter
// so that long and short queues even out over the threads. Inside at::parallel_for ATen runs its own
// ops single-threaded, and OpenMP OpenBLAS does the same inside a parallel region: each call below is
// one whole gemm on one core.
template <class F>
void for_each_expert(int64_t E, const F& work) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(E, at::get_num_threads());
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    // Grad mode is thread-local: the function's forward and backward run with it off on the calling
    // thread only, and these are the OpenMP workers.
    torch::NoGradGuard no_grad;
    for (int64_t e = next++; e < E; e = next++) work(e);
  });
}

std::vector<int64_t> offsets(const std::vector<int64_t>& count) {
  std::vector<int64_t> off(count.size() + 1, 0);
  for (size_t e = 0; e < count.size(); ++e) off[e + 1] = off[e] + count[e];
  return off;
}

class ExpertMlp : public torch::autograd::Function<ExpertMlp> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& xs_in, const std::vector<int64_t>& count,
                               const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                               const torch::Tensor& b2) {
    const torch::Tensor xs = xs_in.contiguous();
    const int64_t E = w1.size(0), hid = w1.size(1), d = w2.size(1), T = xs.size(0);
    const std::vector<int64_t> off = offsets(count);
    torch::Tensor pre = torch::empty({T, hid}, xs.options());  // x·w1ᵀ + b1, kept for GELU'
    torch::Tensor h = torch::empty({T, hid}, xs.options());    // GELU(pre), kept for dw2
    torch::Tensor y = torch::empty({T, d}, xs.options());
    for_each_expert(E, [&](int64_t e) {
      const int64_t n = count[e];
      if (n == 0) return;
      torch::Tensor pre_e = pre.narrow(0, off[e], n), h_e = h.narrow(0, off[e], n);
      at::addmm_out(pre_e, b1[e], xs.narrow(0, off[e], n), w1[e].t());
      at::gelu_out(h_e, pre_e);
      torch::Tensor y_e = y.narrow(0, off[e], n);
      at::addmm_out(y_e, b2[e], h_e, w2[e].t());
    });
    ctx->save_for_backward({xs, w1, w2, pre, h});
    ctx->saved_data["count"] = c10::IValue(count);
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_out) {
    const tensor_list s = ctx->get_saved_variables();
    const torch::Tensor &xs = s[0], &w1 = s[1], &w2 = s[2], &pre = s[3], &h = s[4];
    const std::vector<int64_t> count = ctx->saved_data["count"].toIntVector();
    const torch::Tensor dy = grad_out[0].contiguous();
    const int64_t E = w1.size(0), hid = w1.size(1), d = w2.size(1);
    const std::vector<int64_t> off = offsets(count);
    torch::Tensor dx = torch::empty_like(xs);
    torch::Tensor dw1 = torch::empty_like(w1), db1 = torch::empty({E, hid}, w1.options());
    torch::Tensor dw2 = torch::empty_like(w2), db2 = torch::empty({E, d}, w2.options());
    for_each_expert(E, [&](int64_t e) {
      const int64_t n = count[e];
      if (n == 0) {
        for (torch::Tensor g : {dw1, db1, dw2, db2}) g[e].zero_();
        return;
      }
      const torch::Tensor dy_e = dy.narrow(0, off[e], n), x_e = xs.narrow(0, off[e], n);
      torch::Tensor dw1_e = dw1[e], db1_e = db1[e], dw2_e = dw2[e], db2_e = db2[e], dx_e = dx.narrow(0, off[e], n);
      at::mm_out(dw2_e, dy_e.t(), h.narrow(0, off[e], n));  // [d, hid]
      at::sum_out(db2_e, dy_e, 0);
      const torch::Tensor dpre = at::gelu_backward(at::mm(dy_e, w2[e]), pre.narrow(0, off[e], n));  // [n, hid]
      at::mm_out(dw1_e, dpre.t(), x_e);  // [hid, d]
      at::sum_out(db1_e, dpre, 0);
      at::mm_out(dx_e, dpre, w1[e]);  // [n, d]
    });
    return {dx, torch::Tensor(), dw1, db1, dw2, db2};
  }
};

}  // namespace

torch::Tensor expert_mlp(const torch::Tensor& xs, const std::vector<int64_t>& count, const torch::Tensor& w1,
                         const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2) {
  TORCH_CHECK(static_cast<int64_t>(count.size()) == w1.size(0), "expert_mlp: ", count.size(), " queue counts for ",
              w1.size(0), " experts");
  return ExpertMlp::apply(xs, count, w1, b1, w2, b2);
}

}  // namespace m3vit
