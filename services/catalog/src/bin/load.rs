//! Loads a starter catalog into the catalog database: `xiaoneng-catalog-load --file F`.
//! Uses the catalog's own settings (XIAONENG__DATABASE__* etc.). Loading twice changes nothing.

use clap::Parser;
use xiaoneng_kit::config::{load, NoDomain};
use xiaoneng_kit::ServiceKind;

#[derive(Parser)]
#[command(
    name = "xiaoneng-catalog-load",
    about = "Load a starter catalog (departments, staff, matters) for one county"
)]
struct Cli {
    /// The data file, e.g. services/catalog/data/starter/410702.toml
    #[arg(long)]
    file: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xiaoneng-catalog-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let settings = load::<NoDomain>(ServiceKind::Catalog)?;
    let text = std::fs::read_to_string(&cli.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cli.file.display()))?;
    let file = xiaoneng_catalog::starter::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cli.file.display()))?;
    let pool = xiaoneng_kit::db::connect(&settings.database).await?;
    xiaoneng_kit::db::migrate(&pool, sqlx::migrate!("./migrations")).await?;
    let r = xiaoneng_catalog::starter::load(&pool, &file).await?;
    println!(
        "region {}: created {} departments, {} posts, {} staff, {} certificates, {} matters; {} already present",
        file.region_code, r.departments, r.posts, r.staff, r.certificates, r.matters, r.skipped
    );
    // Publishing changed the catalog: cached answers must go.
    if let Ok(client) = redis::Client::open(settings.redis.url.as_str()) {
        if let Ok(conn) = redis::aio::ConnectionManager::new(client).await {
            xiaoneng_catalog::cache::Cache::new(conn).invalidate().await;
        }
    }
    Ok(())
}
