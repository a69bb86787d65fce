use clap::Parser;

/// `floe … | head` closes stdout early; `println!` then panics. Like other Unix
/// tools, stop quietly instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_broken_pipe();
    let cli = floe_exporter::cli::Cli::parse();
    if let Err(e) = floe_exporter::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
