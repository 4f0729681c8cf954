//! effbench command line: parses arguments and hands each command to `commands/`.

mod commands;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Measure how efficient machine-learning models are, the same way every time.
#[derive(Parser)]
#[command(
    name = "effbench",
    version,
    about,
    after_help = "Examples:\n  effbench run suites/quickstart.toml\n  effbench show results/quickstart\n  effbench report results --format markdown\n  effbench site results --out public\n  effbench list backends\n  effbench meters\n  effbench gate --baseline results/base --current results/pr\n  effbench pareto --csv models.csv --metric acc:higher --metric latency:lower\n\nMetric definitions: docs/metrics.md, every metric: docs/metric-reference.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(commands::run::Args),
    Validate(commands::validate::Args),
    List(commands::list::Args),
    Show(commands::show::Args),
    Meters(commands::meters::Args),
    Plan(commands::plan::Args),
    Merge(commands::merge::Args),
    Status(commands::status::Args),
    Slurm(commands::slurm::Args),
    K8s(commands::k8s::Args),
    Compare(commands::compare::Args),
    Gate(commands::gate::Args),
    Export(commands::export::Args),
    History(commands::history::Args),
    Serve(commands::serve::Args),
    Loadgen(Box<commands::loadgen::Args>),
    Report(commands::report::Args),
    Site(commands::site::Args),
    Pareto(commands::pareto::Args),
    Dynascore(commands::dynascore::Args),
    Completions(commands::completions::Args),
    Man(commands::completions::ManArgs),
}

fn main() -> ExitCode {
    commands::tune_allocator();
    commands::exit_quietly_on_broken_pipe();
    // `vllm bench serve` flags effbench does not support are refused by name, before parsing.
    let argv: Vec<String> = std::env::args().collect();
    if let Err(e) = commands::loadgen_vllm::check_args(&argv) {
        eprintln!("error: {e}");
        return ExitCode::from(commands::EXIT_BAD_INPUT);
    }
    let cli = Cli::parse();
    commands::install_interrupt_handler();
    let outcome = match cli.command {
        Command::Run(a) => commands::run::run(a),
        Command::Validate(a) => commands::validate::run(a),
        Command::List(a) => commands::list::run(a),
        Command::Show(a) => commands::show::run(a),
        Command::Meters(a) => commands::meters::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Status(a) => commands::status::run(a),
        Command::Slurm(a) => commands::slurm::run(a),
        Command::K8s(a) => commands::k8s::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Gate(a) => commands::gate::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::History(a) => commands::history::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Loadgen(a) => commands::loadgen::run(*a),
        Command::Report(a) => commands::report::run(a),
        Command::Site(a) => commands::site::run(a),
        Command::Pareto(a) => commands::pareto::run(a),
        Command::Dynascore(a) => commands::dynascore::run(a),
        Command::Completions(a) => commands::completions::completions(a, Cli::command()),
        Command::Man(a) => commands::completions::man(a, Cli::command()),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            let line =
                effbench_harness::escape::clip(&effbench_harness::runner::error_line(&e), 4000)
                    .into_owned();
            let _ = writeln!(std::io::stderr(), "error: {line}");
            ExitCode::from(commands::exit_code_of(&e))
        }
    }
}
