// Registration of the subcommands. Each cli/cmd_<name>.cpp defines one `register_<name>(CLI::App&)`
// whose callback does the work; callbacks throw m3vit errors, which main() reports.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace m3vit::cli {

void register_all(CLI::App& app);
// What `m3vit --version` prints (cli/version.cpp).
std::string version_text();
// Exit code chosen by the subcommand that ran (0 unless it set one).
int exit_code();
void set_exit_code(int rc);

void register_info(CLI::App& app);  // cli/cmd_info.cpp
void register_infer(CLI::App& app);  // cli/cmd_infer.cpp
void register_export(CLI::App& app);  // cli/cmd_export.cpp
void register_train(CLI::App& app);  // cli/cmd_train.cpp
void register_eval(CLI::App& app);  // cli/cmd_eval.cpp
void register_demo(CLI::App& app);  // cli/cmd_demo.cpp
void register_run(CLI::App& app);  // cli/cmd_run.cpp
void register_hw(CLI::App& app);  // cli/cmd_hw.cpp
void register_trace(CLI::App& app);  // cli/cmd_trace.cpp
void register_serve(CLI::App& app);  // cli/cmd_serve.cpp
void register_calibrate(CLI::App& app);  // cli/cmd_calibrate.cpp

}  // namespace m3vit::cli
