fn main() -> std::process::ExitCode {
    xiaoneng_kit::run_main(
        xiaoneng_kit::ServiceKind::Accountability,
        xiaoneng_accountability::build,
    )
}
