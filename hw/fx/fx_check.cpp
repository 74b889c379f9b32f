// Fixed-point versus fp32 comparison (hw/fx/fx_check.h).
#include "hw/fx/fx_check.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "common/errors.h"
#include "common/progress.h"
#include "hw/fx/ref_encoder.h"

namespace m3vit::hw {

namespace {

void run_fx(const EncoderWeights& w, const std::vector<std::vector<uint8_t>>& images, const FxCheckOptions& opt,
            FxCheckResult& r) {
  using clock = std::chrono::steady_clock;
  FxOptions fo;
  fo.format = opt.format;
  fo.saturate = opt.saturate;
  fo.round_weights = opt.round_weights;
  fo.arith = opt.arith;
  // One accelerator for all images: its on-chip memories are allocated once.
  FxSelected encoder = select_fx_encoder(w, opt.task, fo);
  r.conversion_overflows = encoder.conversion_overflows;
  r.conversion_by_tensor = encoder.overflow_by_tensor;
  const size_t n = static_cast<size_t>(w.cfg.num_tokens()) * w.cfg.embed_dim;
  r.overflows.assign(1 + w.cfg.depth, {});
  double se = 0, ae = 0, ms = 0;
  int64_t agree = 0, choices = 0;
  ProgressBar bar("fixed-point check", static_cast<int64_t>(images.size()), "img");
  for (size_t i = 0; i < images.size(); ++i) {
    auto t0 = clock::now();
    EncoderOutput ref = ref_encoder(w, images[i].data(), opt.task);
    r.ranges.merge(ref.ranges);
    auto t1 = clock::now();
    FxRunInfo info;
    std::vector<float> out = encoder.run(images[i].data(), &info);
    auto t2 = clock::now();
    r.seconds_ref += std::chrono::duration<double>(t1 - t0).count();
    r.seconds_fx += std::chrono::duration<double>(t2 - t1).count();
    for (size_t j = 0; j < n; ++j) {
      double e = static_cast<double>(out[j]) - ref.out[j];
      if (!std::isfinite(e)) throw NumericError("fixed-point check: non-finite output at element " + std::to_string(j));
      se += e * e;
      ae += std::fabs(e);
      r.max_abs = std::max(r.max_abs, std::fabs(e));
      ms += static_cast<double>(ref.out[j]) * ref.out[j];
    }
    for (size_t l = 0; l < ref.topk_idx.size(); ++l)
      for (size_t j = 0; j < ref.topk_idx[l].size(); ++j) {
        ++choices;
        agree += ref.topk_idx[l][j] == info.topk_idx[l][j];
      }
    for (size_t l = 0; l < info.overflows.size(); ++l)
      for (int u = 0; u < fx_unit_count; ++u) r.overflows[l][u] += info.overflows[l][u];
    if (opt.progress) bar.update(static_cast<int64_t>(i + 1), "mse " + std::to_string(se / (n * (i + 1))));
  }
  if (opt.progress) bar.finish();
  const double total = static_cast<double>(n) * images.size();
  r.mse = se / total;
  r.mae = ae / total;
  r.ref_mean_square = ms / total;
  r.routing_agreement = choices ? static_cast<double>(agree) / choices : 1.0;
}

}  // namespace

int signed_int_bits(double max_abs) {
  if (!(max_abs > 0)) return 0;
  int i = static_cast<int>(std::floor(std::log2(max_abs))) + 2;
  while (std::ldexp(1.0, i - 1) <= max_abs) ++i;      // log2 rounding at exact powers of two
  while (std::ldexp(1.0, i - 2) > max_abs) --i;
  return i;
}

double linear_weight_max_abs(const EncoderWeights& w) {
  double m = 0;
  auto track = [&](const std::vector<float>& v) {
    for (float e : v) m = std::max(m, static_cast<double>(std::fabs(e)));
  };
  for (const auto& b : w.blocks) {
    for (const auto* v : {&b.qkv_w, &b.proj_w, &b.fc1_w, &b.fc2_w, &b.w1, &b.w2}) track(*v);
    for (const auto& g : b.gate) track(g);
  }
  return m;
}

FxCheckResult fx_check(const EncoderWeights& w, const std::vector<std::vector<uint8_t>>& images,
                       const FxCheckOptions& opt) {
  if (images.empty()) throw ConfigError("fixed-point check: no images");
  const size_t want = static_cast<size_t>(3) * w.cfg.img_h * w.cfg.img_w;
  for (size_t i = 0; i < images.size(); ++i)
    if (images[i].size() != want)
      throw ShapeError("fixed-point check: image " + std::to_string(i) + " has " + std::to_string(images[i].size()) +
                       " bytes, expected 3 x " + std::to_string(w.cfg.img_h) + " x " + std::to_string(w.cfg.img_w));
  FxCheckResult r;
  r.model = w.cfg.name;
  r.mode = std::string(opt.saturate ? "saturate" : "wrap") + (opt.round_weights ? ", weights rounded" : "");
  r.images = static_cast<int>(images.size());
  r.format = to_string(opt.format);
  r.arith = to_string(opt.arith);
  r.weight_max_abs = linear_weight_max_abs(w);
  run_fx(w, images, opt, r);
  return r;
}

std::string fx_check_text(const FxCheckResult& r) {
  std::ostringstream os;
  char b[1024];
  std::snprintf(b, sizeof b,
                "fixed-point encoder (%s, overflow: %s, %s arithmetic) vs fp32 reference, %s, %d image(s):\n"
                "  MSE %.3g  MAE %.3g  max |error| %.3g  (reference mean square %.3g, relative MSE %.3g)\n"
                "  routing: %.3f%% of top-k choices identical\n",
                r.format.c_str(), r.mode.c_str(), r.arith.c_str(), r.model.c_str(), r.images, r.mse, r.mae, r.max_abs, r.ref_mean_square, r.rel_mse(),
                100 * r.routing_agreement);
  os << b;
  os << "  overflow events: " << r.total_overflows() << " in the kernels, " << r.conversion_overflows
     << " in weight conversion\n";
  for (size_t l = 0; l < r.overflows.size(); ++l) {
    uint64_t s = 0;
    for (uint64_t v : r.overflows[l]) s += v;
    if (!s) continue;
    os << "    " << (l == 0 ? std::string("patch_embed") : "block " + std::to_string(l - 1)) << ":";
    for (int u = 0; u < fx_unit_count; ++u)
      if (r.overflows[l][u]) os << " " << fx_unit_name(u) << " " << r.overflows[l][u];
    os << "\n";
  }
  for (const auto& [name, n] : r.conversion_by_tensor) os << "    weight " << name << ": " << n << " values out of range\n";
  const ActivationRanges& g = r.ranges;
  std::snprintf(b, sizeof b,
                "  measured max |value| (integer bits needed): tokens %.3g (%d), normed %.3g (%d), q/k/v %.3g (%d), "
                "attention %.3g (%d), hidden %.3g (%d), linear outputs %.3g (%d); weights %.3g (%d)\n",
                g.tokens, signed_int_bits(g.tokens), g.normed, signed_int_bits(g.normed), g.qkv, signed_int_bits(g.qkv),
                g.attention, signed_int_bits(g.attention), g.hidden, signed_int_bits(g.hidden), g.linear_out,
                signed_int_bits(g.linear_out), r.weight_max_abs, signed_int_bits(r.weight_max_abs));
  os << b;
  std::snprintf(b, sizeof b, "  time: fixed-point %.2f s, fp32 reference %.2f s\n", r.seconds_fx, r.seconds_ref);
  os << b;
  return os.str();
}

std::string fx_check_json(const FxCheckResult& r) {
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["overflow_mode"] = r.mode;
  j["format"] = r.format;
  j["arith"] = r.arith;
  j["images"] = r.images;
  j["mse"] = r.mse;
  j["mae"] = r.mae;
  j["max_abs_error"] = r.max_abs;
  j["reference_mean_square"] = r.ref_mean_square;
  j["relative_mse"] = r.rel_mse();
  j["routing_agreement"] = r.routing_agreement;
  j["conversion_overflows"] = r.conversion_overflows;
  const ActivationRanges& g = r.ranges;
  j["activation_max_abs"] = {{"tokens", g.tokens},   {"normed", g.normed}, {"qkv", g.qkv},
                             {"attention", g.attention}, {"hidden", g.hidden}, {"linear_out", g.linear_out}};
  j["activation_integer_bits_needed"] = signed_int_bits(g.largest());
  j["weight_max_abs"] = r.weight_max_abs;
  j["weight_integer_bits_needed"] = signed_int_bits(r.weight_max_abs);
  auto& layers = j["overflows_per_layer"] = nlohmann::ordered_json::array();
  for (size_t l = 0; l < r.overflows.size(); ++l) {
    nlohmann::ordered_json lj;
    lj["layer"] = l == 0 ? std::string("patch_embed") : "block " + std::to_string(l - 1);
    for (int u = 0; u < fx_unit_count; ++u) lj[fx_unit_name(u)] = r.overflows[l][u];
    layers.push_back(lj);
  }
  j["seconds_fixed_point"] = r.seconds_fx;
  j["seconds_reference"] = r.seconds_ref;
  return j.dump(1);
}

std::vector<std::vector<uint8_t>> random_images(int count, int h, int w, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<uint8_t>> out;
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> img(static_cast<size_t>(3) * h * w);
    for (int c = 0; c < 3; ++c) {
      double base = u(rng), gx = u(rng) - 0.5, gy = u(rng) - 0.5;
      double bx = u(rng) * w, by = u(rng) * h, br = (0.1 + 0.3 * u(rng)) * std::min(h, w), bv = u(rng) - 0.5;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          double r2 = ((x - bx) * (x - bx) + (y - by) * (y - by)) / (br * br);
          double v = base + gx * x / w + gy * y / h + bv * std::exp(-r2) + 0.05 * (u(rng) - 0.5);
          img[(static_cast<size_t>(c) * h + y) * w + x] = static_cast<uint8_t>(std::clamp(v, 0.0, 1.0) * 255 + 0.5);
        }
    }
    out.push_back(std::move(img));
  }
  return out;
}

}  // namespace m3vit::hw
