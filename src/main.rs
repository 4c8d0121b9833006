//! `callgate` command line: check a dial plan, dry-run routing, print the
//! dial-plan JSON Schema, or run the gateway.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callgate::dialplan::{DialPlan, DialplanError, RouteQuery, Side};
use clap::{Parser, Subcommand};

/// mimalloc: per-message allocations (parsed headers, serialized output)
/// dominate the proxy's user-space CPU after parsing; glibc malloc/free took
/// ~17% of it, measured with `examples/proxy_cpu.rs` under perf.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// callgate: SIP B2BUA, PSTN gateway and SBC.
#[derive(Parser, Debug)]
#[command(name = "callgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a dial plan; prints `FILE: ok (...)` or every error as
    /// `FILE:LINE:COL: message` with the source line and a caret.
    Check {
        /// Dial-plan YAML file.
        file: PathBuf,
    },
    /// Dry-run routing of one call through a dial plan and print the decision.
    Route {
        /// Dial-plan YAML file.
        file: PathBuf,
        /// Called number (Request-URI user).
        #[arg(long)]
        to: String,
        /// Calling number (From user).
        #[arg(long, default_value = "")]
        from: String,
        /// Listener or trunk the call comes from (default: the first listener).
        #[arg(long)]
        source: Option<String>,
        /// Source address, `IP` or `IP:port` (default: the trunk's address
        /// for a trunk source, otherwise 127.0.0.1).
        #[arg(long)]
        source_addr: Option<String>,
    },
    /// Print the JSON Schema of the dial-plan format.
    Schema,
    /// Run the gateway.
    Run {
        /// Dial-plan YAML file.
        #[arg(long)]
        dialplan: PathBuf,
        /// Signaling threads: each reads a share of the UDP listeners and
        /// fires a share of the protocol timers. 1 keeps every call on one
        /// core (the least CPU per call); raise it when one core cannot
        /// carry the signaling load.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        udp_threads: u16,
        /// Media threads: each moves the RTP of a share of the shards
        /// through one io_uring (where the kernel has it). 1 handles every
        /// packet a wake-up finds at once (the least CPU per packet); raise
        /// it when one core cannot carry the media load.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        media_threads: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Route {
            file,
            to,
            from,
            source,
            source_addr,
        } => route(&file, &to, &from, source.as_deref(), source_addr.as_deref()),
        Command::Schema => schema(),
        Command::Run {
            dialplan,
            udp_threads,
            media_threads,
        } => match DialPlan::load(&dialplan) {
            Ok(plan) => callgate::runtime::run(
                plan,
                dialplan,
                usize::from(udp_threads),
                usize::from(media_threads),
            ),
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Ignore the error: it only means a subscriber is already installed.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn print_errors(errors: &[DialplanError]) {
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            eprintln!();
        }
        eprintln!("{e}");
    }
}

fn check(file: &Path) -> ExitCode {
    match DialPlan::check_file(file) {
        Ok(plan) => {
            println!(
                "{}: ok ({} listeners, {} trunks, {} routes)",
                file.display(),
                plan.listeners.len(),
                plan.trunks.len(),
                plan.route_count()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_errors(&errors);
            ExitCode::FAILURE
        }
    }
}

fn route(
    file: &Path,
    to: &str,
    from: &str,
    source: Option<&str>,
    source_addr: Option<&str>,
) -> ExitCode {
    let plan = match DialPlan::check_file(file) {
        Ok(plan) => plan,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::FAILURE;
        }
    };
    let explicit_addr = match source_addr.map(parse_addr).transpose() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let (listener, trunk_name, default_addr) = match source {
        None => (plan.listeners.first().map(|l| l.name.clone()), None, None),
        Some(name) if plan.listener(name).is_some() => (Some(name.to_owned()), None, None),
        Some(name) => match plan.trunk(name) {
            // A call from a trunk arrives on a carrier-side listener.
            Some(t) => (
                plan.listeners
                    .iter()
                    .find(|l| l.side == Side::Carrier)
                    .or(plan.listeners.first())
                    .map(|l| l.name.clone()),
                Some(t.name.clone()),
                Some(t.address),
            ),
            None => {
                eprintln!(
                    "error: `{name}` is neither a listener nor a trunk of {}",
                    file.display()
                );
                return ExitCode::from(2);
            }
        },
    };
    let addr = explicit_addr
        .or(default_addr)
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    let trunk_name = trunk_name.or_else(|| plan.trunk_by_addr(addr).map(|t| t.name.clone()));
    let listener = listener.unwrap_or_default();
    let decision = plan.route(&RouteQuery {
        ruri_user: to,
        from_user: from,
        source_listener: &listener,
        source_trunk: trunk_name.as_deref(),
        source_addr: addr,
    });
    println!("{decision}");
    ExitCode::SUCCESS
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| format!("--source-addr `{s}` is not an IP address or IP:port"))
}

fn schema() -> ExitCode {
    match serde_json::to_string_pretty(&callgate::dialplan::json_schema()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
