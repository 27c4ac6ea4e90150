fn main() -> std::process::ExitCode {
    xiaoneng_kit::run_main(
        xiaoneng_kit::ServiceKind::Evaluation,
        xiaoneng_evaluation::build,
    )
}
