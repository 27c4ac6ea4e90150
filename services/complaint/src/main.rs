fn main() -> std::process::ExitCode {
    xiaoneng_kit::run_main(
        xiaoneng_kit::ServiceKind::Complaint,
        xiaoneng_complaint::build,
    )
}
