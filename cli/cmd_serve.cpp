// `m3vit serve`: the libtorch-free runtime behind HTTP, with a page for the browser (docs/SERVE.md).
//
//   m3vit serve --model M.safetensors [--host 127.0.0.1] [--port 8080] [--experts resident|stream]
//               [--layers resident|stream] [--precision fp32|bf16|int8] [--threads N] [--workers N]
//               [--queue Q] [--max-body BYTES]
//
// This file only reads the options; serve/server.cpp does the rest.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "runtime/options.h"
#include "serve/server.h"

namespace m3vit::cli {

namespace {

struct ServeArgs {
  serve::ServeOptions serve;
  std::string experts = "resident", layers = "resident", precision = "fp32", max_body = "16M";
  int threads = 0;
};

}  // namespace

void register_serve(CLI::App& app) {
  auto* sub = app.add_subcommand("serve", "serve the runtime over HTTP, with a page for the browser (docs/SERVE.md)");
  auto a = std::make_shared<ServeArgs>();
  sub->add_option("--model,-m", a->serve.model, "model export (.safetensors from `m3vit export`)")->required();
  sub->add_option("--host", a->serve.host, "address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", a->serve.port, "TCP port (default 8080; 0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  sub->add_option("--experts", a->experts, "resident: all experts in RAM; stream: read from the file as needed")
      ->check(CLI::IsMember({"resident", "stream"}));
  sub->add_option("--layers", a->layers, "attention, dense MLP and head conv weights: resident or stream")
      ->check(CLI::IsMember({"resident", "stream"}));
  sub->add_option("--precision", a->precision,
                  "fp32 (default), bf16 (AVX512-BF16) or int8 (AVX512-VNNI; the file of `m3vit calibrate`)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  sub->add_option("--threads", a->threads, "CPU threads of each worker's engine (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--workers", a->serve.workers, "engines running requests in parallel (default 1)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--queue", a->serve.queue, "requests that may wait for a worker; more are answered 503 (default 8)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-body", a->max_body, "largest request body, e.g. 16M (default); larger is answered 413");
  sub->callback([a] {
    serve::ServeOptions o = a->serve;
    o.engine.experts = rt::residency_from_string(a->experts);
    o.engine.layers = rt::residency_from_string(a->layers);
    o.engine.precision = rt::precision_from_string(a->precision);
    o.engine.threads = a->threads;
    o.max_body = rt::parse_bytes(a->max_body);
    serve::run(o);
  });
}

}  // namespace m3vit::cli
