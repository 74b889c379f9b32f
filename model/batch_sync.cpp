#include "common/pch/torch_pch.h"

// Batch statistics over processes (see batch_sync.h).
#include "model/batch_sync.h"

namespace m3vit {

namespace {

// A plain global, not thread_local: the autograd engine may run a CPU backward on another thread.
const BatchSync* g_sync = nullptr;

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = Σ_processes x; dy/dx_p = the sum of the processes' incoming gradients (each process's loss used
// the same y, so the gradient reaching its own x is the total over the processes).
struct SumOverProcesses : public torch::autograd::Function<SumOverProcesses> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x) {
    std::vector<torch::Tensor> t{x.detach().contiguous().clone()};
    g_sync->sum_in_place(t);
    return t[0];
  }
  static variable_list backward(AutogradContext*, variable_list g) {
    std::vector<torch::Tensor> t{g[0].contiguous().clone()};
    g_sync->sum_in_place(t);
    return {t[0]};
  }
};

// BatchNorm's normalisation with statistics (mean, invstd) of the global batch of n values per
// channel. x [B, C, H, W]; mean, invstd [C] (computed by the caller, treated here as functions of x).
// Backward (x̂ = (x − mean)·invstd, g = ∂L/∂y):
//   ∂L/∂x = w·invstd·(g − Σg/n − x̂·Σ(g·x̂)/n), the two sums over the global batch (summed over processes);
//   ∂L/∂w = Σ g·x̂ and ∂L/∂b = Σ g over this process's batch (the trainer averages them as any gradient).
struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& mean, const torch::Tensor& invstd,
                               double n) {
    auto shape = [](const torch::Tensor& v) { return v.view({1, -1, 1, 1}); };
    torch::Tensor xhat = (x - shape(mean)) * shape(invstd);
    ctx->save_for_backward({xhat, weight, invstd});
    ctx->saved_data["n"] = n;
    return xhat * shape(weight) + shape(bias);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& xhat = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& invstd = saved[2];
    const double n = ctx->saved_data["n"].toDouble();
    torch::Tensor g = grads[0].contiguous();
    torch::Tensor sum_g = g.sum({0, 2, 3});               // [C]
    torch::Tensor sum_g_xhat = (g * xhat).sum({0, 2, 3});  // [C]
    std::vector<torch::Tensor> global{sum_g.to(torch::kDouble), sum_g_xhat.to(torch::kDouble)};
    g_sync->sum_in_place(global);
    auto shape = [](const torch::Tensor& v) { return v.view({1, -1, 1, 1}); };
    torch::Tensor mean_g = (global[0] / n).to(g.scalar_type());
    torch::Tensor mean_g_xhat = (global[1] / n).to(g.scalar_type());
    torch::Tensor dx = shape(weight * invstd) * (g - shape(mean_g) - xhat * shape(mean_g_xhat));
    return {dx, sum_g_xhat, sum_g, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

const BatchSync* batch_sync() { return g_sync; }

BatchSyncScope::BatchSyncScope(const BatchSync* s) : prev_(g_sync) { g_sync = s; }
BatchSyncScope::~BatchSyncScope() { g_sync = prev_; }

double batch_normalizer(double local) {
  if (!g_sync || !g_sync->global_batch_stats) return local;
  std::vector<torch::Tensor> t{torch::tensor({local}, torch::kDouble)};
  g_sync->sum_in_place(t);
  return t[0].item<double>() * g_sync->share;
}

double batch_fraction(double part, double whole) {
  if (!g_sync || !g_sync->global_batch_stats) return part / whole;
  std::vector<torch::Tensor> t{torch::tensor({part, whole}, torch::kDouble)};
  g_sync->sum_in_place(t);
  return t[0][0].item<double>() / t[0][1].item<double>();
}

torch::Tensor sum_over_processes(const torch::Tensor& t) {
  if (!g_sync) return t;
  return SumOverProcesses::apply(t);
}

SyncBatchNorm2dImpl::SyncBatchNorm2dImpl(torch::nn::BatchNormOptions o) : options(std::move(o)) { reset(); }

void SyncBatchNorm2dImpl::reset() {
  // torch::nn::BatchNorm2d's initial state: weight 1, bias 0, running mean 0 and variance 1.
  const int64_t C = options.num_features();
  weight = register_parameter("weight", torch::ones({C}));
  bias = register_parameter("bias", torch::zeros({C}));
  running_mean = register_buffer("running_mean", torch::zeros({C}));
  running_var = register_buffer("running_var", torch::ones({C}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "m3vit::SyncBatchNorm2d(" << options.num_features() << ", eps=" << options.eps() << ")";
}

torch::Tensor SyncBatchNorm2dImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm2d: expected [B, C, H, W], got ", x.sizes());
  const double momentum = options.momentum().value();
  if (!g_sync || !is_training()) {
    // torch::nn::BatchNorm2d's forward (momentum set: no cumulative average).
    if (is_training()) num_batches_tracked.add_(1);
    return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, options.eps(),
                             at::globalContext().userEnabledCuDNN());
  }
  // Σx, Σx² and the count over the global batch, in double (torch's CPU BatchNorm accumulates in
  // double too), in one collective.
  torch::Tensor xd = x.detach().to(torch::kDouble);
  const int64_t C = x.size(1);
  std::vector<torch::Tensor> stats{torch::cat({xd.sum({0, 2, 3}), (xd * xd).sum({0, 2, 3}),
                                               torch::full({1}, static_cast<double>(x.numel() / C), xd.options())})};
  g_sync->sum_in_place(stats);
  const double n = stats[0][2 * C].item<double>();
  TORCH_CHECK(n > 1, "SyncBatchNorm2d: needs more than one value per channel over the global batch");
  torch::Tensor mean = stats[0].narrow(0, 0, C) / n;
  torch::Tensor var = (stats[0].narrow(0, C, C) / n - mean * mean).clamp_min(0);  // biased, for normalising
  torch::Tensor invstd = (var + options.eps()).rsqrt();
  {
    // Running statistics as torch's BatchNorm keeps them: unbiased variance, momentum 0.1.
    torch::NoGradGuard no_grad;
    running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
    running_var.mul_(1 - momentum).add_((var * (n / (n - 1))).to(running_var.scalar_type()), momentum);
    num_batches_tracked.add_(1);
  }
  return SyncBatchNormFn::apply(x, weight, bias, mean.to(x.scalar_type()), invstd.to(x.scalar_type()), n);
}

}  // namespace m3vit
