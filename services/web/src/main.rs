#[tokio::main]
async fn main() {
    if let Err(e) = xiaoneng_web::run().await {
        eprintln!("xiaoneng-web: {e:#}");
        std::process::exit(2);
    }
}
