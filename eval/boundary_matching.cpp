// Maximum bipartite matching of boundary pixels within a distance (eval/boundary_matching.h).
#include "eval/boundary_matching.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

BoundaryTargets make_boundary_targets(const std::vector<uint8_t>& gt, int h, int w, double max_dist) {
  const size_t n = static_cast<size_t>(h) * w;
  if (gt.size() != n) throw ShapeError("match_boundaries: ground-truth map does not match the image size");
  if (!(max_dist >= 0)) throw ConfigError("match_boundaries: the distance tolerance must be >= 0");
  BoundaryTargets t;
  t.h = h;
  t.w = w;
  t.max_dist = max_dist;
  t.index.assign(n, -1);
  t.in_reach.assign(n, 0);
  const int r = static_cast<int>(std::floor(max_dist));
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
      if (dy * dy + dx * dx <= max_dist * max_dist) t.offsets.push_back({dy, dx});
  std::stable_sort(t.offsets.begin(), t.offsets.end(), [](const BoundaryTargets::Offset& a, const BoundaryTargets::Offset& b) {
    return a.dy * a.dy + a.dx * a.dx < b.dy * b.dy + b.dx * b.dx;
  });
  for (size_t k = 0; k < n; ++k) {
    if (!gt[k]) continue;
    t.index[k] = static_cast<int>(t.count++);
    const int y = static_cast<int>(k / w), x = static_cast<int>(k % w);
    for (const auto& o : t.offsets) {  // the disc is symmetric: mark every pixel that reaches k
      const int yy = y + o.dy, xx = x + o.dx;
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) t.in_reach[static_cast<size_t>(yy) * w + xx] = 1;
    }
  }
  return t;
}

BoundaryMatch match_boundaries(const std::vector<uint8_t>& pred, const std::vector<uint8_t>& gt, int h, int w,
                               double max_dist) {
  return match_boundaries(pred, make_boundary_targets(gt, h, w, max_dist));
}

BoundaryMatch match_boundaries(const std::vector<uint8_t>& pred, const BoundaryTargets& t) {
  const int h = t.h, w = t.w;
  const size_t n = static_cast<size_t>(h) * w;
  if (pred.size() != n) throw ShapeError("match_boundaries: prediction map does not match the image size");
  BoundaryMatch out;
  out.ground_truth = t.count;
  std::vector<int> us;  // predicted pixels that can reach some ground-truth pixel
  for (size_t k = 0; k < n; ++k)
    if (pred[k]) {
      ++out.predicted;
      if (t.in_reach[k]) us.push_back(static_cast<int>(k));
    }
  if (us.empty() || t.count == 0) return out;

  // Bipartite graph in CSR form: predicted pixel u -> ground-truth pixels v in reach, nearest first
  // (so that the greedy start prefers short pairs).
  const int nu = static_cast<int>(us.size()), nv = static_cast<int>(t.count);
  std::vector<int> start(nu + 1, 0), adj;
  for (int u = 0; u < nu; ++u) {
    const int y = us[u] / w, x = us[u] % w;
    for (const auto& o : t.offsets) {
      const int yy = y + o.dy, xx = x + o.dx;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      const int v = t.index[static_cast<size_t>(yy) * w + xx];
      if (v >= 0) adj.push_back(v);
    }
    start[u + 1] = static_cast<int>(adj.size());
  }

  std::vector<int> match_u(nu, -1), match_v(nv, -1);
  int64_t matched = 0;
  for (int u = 0; u < nu; ++u)  // greedy start
    for (int e = start[u]; e < start[u + 1]; ++e)
      if (match_v[adj[e]] < 0) {
        match_u[u] = adj[e];
        match_v[adj[e]] = u;
        ++matched;
        break;
      }

  // Hopcroft-Karp phases: BFS layers from the free predicted pixels, then vertex-disjoint shortest
  // augmenting paths by an iterative depth-first search.
  const int inf = INT_MAX;
  std::vector<int> dist(nu), queue, it(nu), stack_u, stack_v;
  while (true) {
    queue.clear();
    for (int u = 0; u < nu; ++u) {
      dist[u] = match_u[u] < 0 ? 0 : inf;
      if (match_u[u] < 0) queue.push_back(u);
    }
    bool found = false;
    for (size_t q = 0; q < queue.size(); ++q) {
      const int u = queue[q];
      for (int e = start[u]; e < start[u + 1]; ++e) {
        const int u2 = match_v[adj[e]];
        if (u2 < 0) found = true;
        else if (dist[u2] == inf) dist[u2] = dist[u] + 1, queue.push_back(u2);
      }
    }
    if (!found) break;
    for (int u = 0; u < nu; ++u) it[u] = start[u];
    for (int root = 0; root < nu; ++root) {
      if (match_u[root] >= 0) continue;
      stack_u.assign(1, root);
      stack_v.clear();
      while (!stack_u.empty()) {
        const int u = stack_u.back();
        if (it[u] == start[u + 1]) {  // dead end: never revisit in this phase
          dist[u] = inf;
          stack_u.pop_back();
          if (!stack_v.empty()) stack_v.pop_back();
          continue;
        }
        const int v = adj[it[u]++];
        const int u2 = match_v[v];
        if (u2 < 0) {  // free ground-truth pixel: flip the path
          stack_v.push_back(v);
          for (size_t i = 0; i < stack_u.size(); ++i) {
            match_u[stack_u[i]] = stack_v[i];
            match_v[stack_v[i]] = stack_u[i];
          }
          ++matched;
          break;
        }
        if (dist[u2] == dist[u] + 1) {
          stack_v.push_back(v);
          stack_u.push_back(u2);
        }
      }
    }
  }
  out.matched = matched;
  return out;
}

}  // namespace m3vit
