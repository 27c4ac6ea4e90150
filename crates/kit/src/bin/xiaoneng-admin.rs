//! Operator tool: mint development tokens, create the event topics, load a calendar notice.

use clap::{Parser, Subcommand};
use xiaoneng_kit::auth::TokenMinter;
use xiaoneng_kit::config::{load, NoDomain};
use xiaoneng_kit::ServiceKind;

#[derive(Parser)]
#[command(
    name = "xiaoneng-admin",
    about = "Xiaoneng operator tool (reads the same XIAONENG__* settings as the services)"
)]
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
        /// Comma-separated roles: catalog_admin, clerk, reviewer, hall_manager, supervisor,
        /// inspector, system, citizen.
        #[arg(long, default_value = "")]
        roles: String,
        /// 6-digit region code of the caller's office.
        #[arg(long)]
        region: String,
        /// The caller's department code (the `dept` claim): a clerk's or a department
        /// system's own department, e.g. SCJGJ.
        #[arg(long)]
        dept: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl: u64,
    },
    /// Creates every service's events topic that is missing.
    CreateTopics,
    /// Loads a calendar notice (a new year's State Council notice or a region's overlay, TOML)
    /// into the case service, which validates it, applies it on every replica and recomputes
    /// the open deadlines it moves. A refused notice prints every bad line.
    LoadCalendar {
        /// The notice file.
        file: std::path::PathBuf,
        /// host:port of the case service.
        #[arg(long, default_value = "127.0.0.1:50053")]
        addr: String,
        /// The office the operator acts for: a city or province for a national year, the
        /// region itself (or above) for an overlay.
        #[arg(long, default_value = "410700")]
        region: String,
    },
    /// Prints how far the official calendar covers a region (`GetCalendarCoverage` of the case
    /// service): the last covered day, the days left and the notices loaded; exits 1 when fewer
    /// than 45 days are left (the longest limits reach about that far).
    CalendarCoverage {
        /// host:port of the case service.
        #[arg(long, default_value = "127.0.0.1:50053")]
        addr: String,
        #[arg(long, default_value = "410700")]
        region: String,
    },
    /// Waits until every address answers the gRPC health check with SERVING.
    WaitServing {
        /// Seconds to wait in all.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// host:port of each service (one at least).
        #[arg(required = true)]
        addrs: Vec<String>,
    },
}

/// The status of the overall health service at `addr`, or the error that prevented asking.
async fn health(addr: &str) -> Result<String, String> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(std::time::Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = HealthClient::new(channel);
    let resp = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("{:?}", resp.into_inner().status()))
}

/// A client of the case service at `addr` and a request carrying an operator's token of
/// `roles` for `region`.
async fn case_client<T>(
    settings: &xiaoneng_kit::config::Settings<NoDomain>,
    addr: &str,
    region: &str,
    roles: &[&str],
    msg: T,
) -> Result<
    (
        xiaoneng_proto::case::v1::case_service_client::CaseServiceClient<tonic::transport::Channel>,
        tonic::Request<T>,
    ),
    String,
> {
    xiaoneng_kit::region::RegionCode::parse(region).map_err(|e| format!("--region: {e}"))?;
    let token = TokenMinter::new(&settings.auth).mint("operator", roles, region, None, 300);
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut req = tonic::Request::new(msg);
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| "token".to_string())?;
    req.metadata_mut().insert("authorization", bearer);
    Ok((
        xiaoneng_proto::case::v1::case_service_client::CaseServiceClient::new(channel),
        req,
    ))
}

/// The coverage of `region`'s calendar as lines, and whether it is short.
async fn calendar_coverage(
    settings: &xiaoneng_kit::config::Settings<NoDomain>,
    addr: &str,
    region: &str,
) -> Result<(String, bool), String> {
    let msg = xiaoneng_proto::case::v1::GetCalendarCoverageRequest {
        region_code: region.to_string(),
    };
    // Read as the efficiency office of the region.
    let roles = [xiaoneng_kit::auth::roles::SUPERVISOR];
    let (mut client, req) = case_client(settings, addr, region, &roles, msg).await?;
    let c = client
        .get_calendar_coverage(req)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    let mut lines = vec![format!(
        "{}: covered through {} ({} days left)",
        c.region_code,
        if c.covered_through.is_empty() {
            "-"
        } else {
            &c.covered_through
        },
        c.days_left
    )];
    for n in &c.notices {
        lines.push(format!(
            "  {} {} (epoch {}{})",
            n.scope,
            n.version,
            n.epoch,
            if n.fabricated { ", fabricated" } else { "" }
        ));
    }
    Ok((lines.join("\n"), c.days_left < 45))
}

/// Sends the notice in `file` to the case service at `addr` as the platform, for `region`.
async fn load_calendar(
    settings: &xiaoneng_kit::config::Settings<NoDomain>,
    file: &std::path::Path,
    addr: &str,
    region: &str,
) -> Result<String, String> {
    use xiaoneng_proto::case::v1::LoadCalendarNoticeRequest;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let roles = [xiaoneng_kit::auth::roles::SYSTEM];
    let (mut client, req) = case_client(
        settings,
        addr,
        region,
        &roles,
        LoadCalendarNoticeRequest { text },
    )
    .await?;
    match client.load_calendar_notice(req).await {
        Ok(r) => {
            let n = r.into_inner().notice.unwrap_or_default();
            Ok(format!(
                "loaded {} {} (epoch {}{})",
                n.scope,
                n.version,
                n.epoch,
                if n.fabricated { ", fabricated" } else { "" }
            ))
        }
        Err(status) => {
            use tonic_types::StatusExt;
            let mut lines = vec![format!("{:?}: {}", status.code(), status.message())];
            if let Some(bad) = status.get_details_bad_request() {
                lines.extend(
                    bad.field_violations
                        .into_iter()
                        .map(|v| format!("  {}", v.description)),
                );
            }
            Err(lines.join("\n"))
        }
    }
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
        Command::MintToken {
            sub,
            roles,
            region,
            dept,
            ttl,
        } => {
            if let Err(e) = xiaoneng_kit::region::RegionCode::parse(&region) {
                eprintln!("xiaoneng-admin: --region: {e}");
                return std::process::ExitCode::from(2);
            }
            let roles: Vec<&str> = roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .collect();
            if let Some(bad) = roles.iter().find(|r| !xiaoneng_kit::auth::is_role(r)) {
                eprintln!(
                    "xiaoneng-admin: --roles: {bad:?} is no role (one of {})",
                    xiaoneng_kit::auth::ALL_ROLES.join(", ")
                );
                return std::process::ExitCode::from(2);
            }
            println!(
                "{}",
                TokenMinter::new(&settings.auth).mint(&sub, &roles, &region, dept.as_deref(), ttl)
            );
            std::process::ExitCode::SUCCESS
        }
        Command::WaitServing { timeout, addrs } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            rt.block_on(async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
                for addr in &addrs {
                    loop {
                        match health(addr).await {
                            Ok(s) if s == "Serving" => {
                                println!("{addr} SERVING");
                                break;
                            }
                            other if std::time::Instant::now() > deadline => {
                                eprintln!("xiaoneng-admin: {addr} not serving: {other:?}");
                                return std::process::ExitCode::FAILURE;
                            }
                            _ => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
                        }
                    }
                }
                std::process::ExitCode::SUCCESS
            })
        }
        Command::LoadCalendar { file, addr, region } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(load_calendar(&settings, &file, &addr, &region)) {
                Ok(done) => {
                    println!("{done}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::CalendarCoverage { addr, region } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(calendar_coverage(&settings, &addr, &region)) {
                Ok((lines, short)) => {
                    println!("{lines}");
                    if short {
                        eprintln!(
                            "xiaoneng-admin: fewer than 45 days covered: load next year's notice (xiaoneng-admin load-calendar)"
                        );
                        return std::process::ExitCode::FAILURE;
                    }
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xiaoneng-admin: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
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
                Ok(created) => {
                    for t in topics {
                        let done = if created.contains(&t) {
                            "created"
                        } else {
                            "exists"
                        };
                        println!("{t} {done}");
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
