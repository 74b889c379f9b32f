// Expert parallelism inside a MoE layer (the authors' FastMoE scheme: fmoe/layers.py FMoE.forward with
// world_size > 1, fmoe/functions.py MOEScatter / MOEGather and their global_scatter / global_gather):
// each process holds E/N of a layer's E experts and routes its own tokens; a token goes to the
// process that holds its expert and its output comes back.
//
//   local pairs sorted by expert (the token queues)  ── all-to-all of counts, then of rows ──▶
//   rows from every rank, regrouped by local expert ── Experts::forward_queues ──▶ regrouped back
//   ── all-to-all of rows (the reverse split) ──▶ weighted and added to their tokens, as moe_dispatch
//
// The backward pass mirrors it: the gradient of an all-to-all is the all-to-all with the splits
// swapped. Only the token rows travel; the experts' weights and their gradients stay where they are.
// The processes meet through the active BatchSync (model/batch_sync.h); the model knows no sockets.
#pragma once

#include "common/pch/torch_pch.h"

#include <vector>

#include "model/experts.h"

namespace m3vit {

// Rows exchanged between processes, differentiable: send_rows[s] consecutive rows of x go to rank s,
// and recv_rows[s] rows come from rank s (in rank order). -> [Σ recv_rows, d]. Needs a BatchSync
// with all_to_all, in the forward and the backward pass.
torch::Tensor exchange_rows(const torch::Tensor& x, const std::vector<int64_t>& send_rows,
                            const std::vector<int64_t>& recv_rows);

// moe_dispatch (model/moe_layer.h) when `experts` holds this rank's E/N of `num_experts` experts:
// out [T, d] = Σ_j w[:, j] · Expert_{idx[:, j]}(x), whichever rank holds the expert.
// x: [T, d]; idx: [T, k] int64 in [0, E); w: [T, k]. A collective: every rank calls it together.
torch::Tensor moe_dispatch_sharded(Experts& experts, int num_experts, const torch::Tensor& x,
                                   const torch::Tensor& idx, const torch::Tensor& w);

}  // namespace m3vit
