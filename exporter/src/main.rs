use clap::Parser;

fn main() {
    let cli = floe_exporter::cli::Cli::parse();
    if let Err(e) = floe_exporter::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
