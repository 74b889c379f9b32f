#include "common/pch/torch_pch.h"

// Expert-parallel MoE dispatch (see expert_parallel.h; FastMoE fmoe/functions.py).
#include "model/expert_parallel.h"

#include "common/errors.h"
#include "model/batch_sync.h"
#include "model/moe_layer.h"

namespace m3vit {

namespace {

const BatchSync& expert_exchange() {
  const BatchSync* s = batch_sync();
  if (!s || !s->all_to_all)
    throw Error("a MoE layer holds only some of its experts, but no expert-parallel run is active");
  return *s;
}

// The all-to-all as an autograd function: its gradient goes back along the reversed split.
struct ExchangeRows : public torch::autograd::Function<ExchangeRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows) {
    ctx->saved_data["send"] = send_rows;
    ctx->saved_data["recv"] = recv_rows;
    return expert_exchange().all_to_all(x, send_rows, recv_rows);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto send = ctx->saved_data["send"].toIntVector(), recv = ctx->saved_data["recv"].toIntVector();
    return {expert_exchange().all_to_all(grad[0], recv, send), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor exchange_rows(const torch::Tensor& x, const std::vector<int64_t>& send_rows,
                            const std::vector<int64_t>& recv_rows) {
  return ExchangeRows::apply(x, send_rows, recv_rows);
}

torch::Tensor moe_dispatch_sharded(Experts& experts, int num_experts, const torch::Tensor& x,
                                   const torch::Tensor& idx, const torch::Tensor& w) {
  const BatchSync& sync = expert_exchange();
  const int64_t E = num_experts, N = sync.world, local = experts->num_experts();
  if (local * N != E)
    throw ShapeError("expert parallel: " + std::to_string(local) + " experts on each of " + std::to_string(N) +
                     " ranks, but the router chooses among " + std::to_string(E));

  // This rank's token queues over all E experts; rank s's experts are queues [s·local, (s+1)·local).
  TokenQueues q = make_token_queues(idx, static_cast<int>(E));
  torch::Tensor xs = x.index_select(0, q.token);               // [T*k, d] tokens in queue order
  torch::Tensor ws = w.reshape({-1}).index_select(0, q.pair);  // [T*k]

  // Counts first (FastMoE exchanges them before the rows): from[s·local + j] = how many rows rank s
  // sends to local expert j.
  torch::Tensor sent = torch::tensor(q.count, torch::kLong);  // [E]
  const std::vector<int64_t> per_rank(N, local);
  torch::Tensor from_t = sync.all_to_all(sent, per_rank, per_rank);  // [N * local]
  const int64_t* from = from_t.data_ptr<int64_t>();
  std::vector<int64_t> send_rows(N, 0), recv_rows(N, 0), expert_rows(local, 0);
  for (int64_t s = 0; s < N; ++s)
    for (int64_t j = 0; j < local; ++j) {
      send_rows[s] += q.count[s * local + j];
      recv_rows[s] += from[s * local + j];
      expert_rows[j] += from[s * local + j];
    }

  // Rows arrive grouped by sender, then by expert; the experts want them grouped by expert (one queue
  // each, the senders' blocks one after another). `order` lists arrived rows in queue order.
  torch::Tensor arrived = exchange_rows(xs, send_rows, recv_rows);  // [Σ recv_rows, d]
  std::vector<int64_t> start(N * local);                            // row where block (s, j) begins
  for (int64_t s = 0, row = 0; s < N; ++s)
    for (int64_t j = 0; j < local; ++j) {
      start[s * local + j] = row;
      row += from[s * local + j];
    }
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(arrived.size(0)));
  for (int64_t j = 0; j < local; ++j)
    for (int64_t s = 0; s < N; ++s)
      for (int64_t i = 0; i < from[s * local + j]; ++i) order.push_back(start[s * local + j] + i);
  const torch::Tensor order_t = torch::tensor(order, torch::kLong);
  torch::Tensor y = experts->forward_queues(arrived.index_select(0, order_t), expert_rows);  // queue order
  // Back to arrival order (the inverse permutation), then home along the reversed split.
  torch::Tensor back = torch::empty_like(order_t).index_copy_(0, order_t, torch::arange(order_t.size(0)));
  torch::Tensor ys = exchange_rows(y.index_select(0, back), recv_rows, send_rows);  // [T*k, d]
  return torch::zeros_like(x).index_add(0, q.token, ys * ws.unsqueeze(1));          // [T, d]
}

}  // namespace m3vit
