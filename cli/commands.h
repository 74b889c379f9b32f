// Registration of the subcommands. Each cli/cmd_<name>.cpp defines one `register_<name>(CLI::App&)`
// whose callback does the work; callbacks throw m3vit errors, which main() reports.
#pragma once

namespace CLI {
class App;
}

namespace m3vit::cli {

void register_all(CLI::App& app);
// Exit code chosen by the subcommand that ran (0 unless it set one).
int exit_code();
void set_exit_code(int rc);

void register_info(CLI::App& app);
void register_infer(CLI::App& app);
void register_export(CLI::App& app);

}  // namespace m3vit::cli
