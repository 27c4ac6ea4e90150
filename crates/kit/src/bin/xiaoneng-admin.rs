//! Operator tool: mint development tokens, create the event topics.

use clap::{Parser, Subcommand};
use xiaoneng_kit::auth::TokenMinter;
use xiaoneng_kit::config::{load, NoDomain};
use xiaoneng_kit::ServiceKind;

#[derive(Parser)]
#[command(name = "xiaoneng-admin", about = "Xiaoneng operator tool (reads the same XIAONENG__* settings as the services)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints a signed token for development and tests.
    MintToken {
        /// Subject (user or system id).
        #[arg(long)]
        sub: String,
        /// Comma-separated roles, e.g. clerk,supervisor.
        #[arg(long, default_value = "")]
        roles: String,
        /// 6-digit region code of the caller's office.
        #[arg(long)]
        region: String,
        #[arg(long)]
        dept: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl: u64,
    },
    /// Creates every service's events topic that is missing.
    CreateTopics,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match load::<NoDomain>(ServiceKind::Catalog) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xiaoneng-admin: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match cli.command {
        Command::MintToken { sub, roles, region, dept, ttl } => {
            if let Err(e) = xiaoneng_kit::region::RegionCode::parse(&region) {
                eprintln!("xiaoneng-admin: --region: {e}");
                return std::process::ExitCode::from(2);
            }
            let roles: Vec<&str> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
            println!("{}", TokenMinter::new(&settings.auth).mint(&sub, &roles, &region, dept.as_deref(), ttl));
            std::process::ExitCode::SUCCESS
        }
        Command::CreateTopics => {
            let topics: Vec<String> = ServiceKind::ALL.iter().map(|k| k.topic()).collect();
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(xiaoneng_kit::kafka::ensure_topics(&settings.kafka, &topics)) {
                Ok(()) => {
                    for t in topics {
                        println!("{t}");
                    }
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
